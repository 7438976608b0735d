"""``python -m e5np.reference_model``: plain NumPy, no Numba or torch, one JSON array per text."""

import json
import subprocess
import sys

import numpy as np

from e5np.reference_model import ReferenceModel

TEXTS = ["query: how much protein should a female eat", "passage: Définition de « sommet »"]


def test_command_prints_the_embeddings_without_numba_or_torch(minilm_folder):
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "e5np.reference_model", str(minilm_folder), *TEXTS],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in run.stderr.splitlines() if "|" in line}
    assert "e5np" in imported and not imported & {"numba", "llvmlite", "torch", "transformers"}, sorted(imported)
    printed = np.array([json.loads(line) for line in run.stdout.splitlines()], np.float32)
    expected = np.stack([ReferenceModel(minilm_folder).embed(t) for t in TEXTS])
    assert printed.shape == (2, 384) and np.array_equal(printed, expected)
    assert np.allclose(np.linalg.norm(printed, axis=1), 1, atol=1e-6)  # MiniLM's folder has a Normalize module


def test_command_names_a_bad_folder(tmp_path):
    run = subprocess.run([sys.executable, "-m", "e5np.reference_model", str(tmp_path), "x"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "config.json" in run.stderr and "Traceback" not in run.stderr
