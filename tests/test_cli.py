"""The ``e5np embed`` command: arguments, stdin, .npy output, exit codes and messages."""

import json
import subprocess
import sys

import numpy as np

import hf_reference
from checks import assert_close
from e5np import E5Model
from texts import MODEL_CARD_INPUTS


def e5np(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "e5np", *args], input=stdin, capture_output=True, text=True)


def test_embed_model_card_texts_scores_match_hf(minilm_folder):
    result = e5np("embed", *MODEL_CARD_INPUTS, "--model", str(minilm_folder))
    assert result.returncode == 0, result.stderr
    vectors = np.array([json.loads(line) for line in result.stdout.splitlines()], np.float32)
    assert vectors.shape == (4, 384)
    ref = hf_reference.run(minilm_folder, tuple(MODEL_CARD_INPUTS), 256)
    assert_close(vectors[:2] @ vectors[2:].T * 100, ref.embeddings[:2] @ ref.embeddings[2:].T * 100, 1e-3,
                 label="CLI model card scores vs HF")


def test_stdin_and_npy_output(minilm_folder, tmp_path):
    out = tmp_path / "v.npy"
    result = e5np("embed", "--model", str(minilm_folder), "--prefix", "query", "-o", str(out), "--max-batch-tokens", "4",
                  stdin="summit define\nquery: summit define\n")
    assert result.returncode == 0, result.stderr
    vectors = np.load(out)
    expected = E5Model(minilm_folder).encode(["query: summit define"] * 2)
    assert vectors.dtype == np.float32 and np.array_equal(vectors, expected)


def test_errors_exit_2_with_a_message(tmp_path, minilm_folder):
    missing = e5np("embed", "x", "--model", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no such model folder" in missing.stderr and "Traceback" not in missing.stderr
    bad_output = e5np("embed", "x", "--model", str(minilm_folder), "-o", str(tmp_path / "v.txt"))
    assert bad_output.returncode == 2 and "must end in .npy" in bad_output.stderr
    too_long = e5np("embed", "x", "--model", str(minilm_folder), "--max-length", "9999")
    assert too_long.returncode == 2 and "max_length=9999" in too_long.stderr
    no_tokens = e5np("embed", "x", "--model", str(minilm_folder), "--max-batch-tokens", "0")
    assert no_tokens.returncode == 2 and "--max-batch-tokens must be at least 1, not 0" in no_tokens.stderr
