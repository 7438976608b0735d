"""precision="int8" as a user meets it: chosen by name only, close to fp32 on real weights, bitwise
the same however texts are batched, calibrated once and cached, and a named fallback where the
CPU lacks VNNI (forced here) that never loads the VNNI module."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from checks import cosine_rows
from e5np import E5Model
from e5np.engine import calibration, encoder
from e5np.runtime import avx512_vnni_problem, choose_precision
from texts import PARITY_TEXTS

needs_vnni = pytest.mark.skipif(avx512_vnni_problem() is not None, reason=str(avx512_vnni_problem()))
ZEN4 = frozenset({"avx512f", "avx512_bf16", "avx512_vnni"})


@pytest.fixture(scope="module")
def int8_model(minilm_folder):
    return E5Model(minilm_folder, precision="int8")


def test_int8_is_chosen_by_name_only():
    yes = lambda: True  # noqa: E731
    for requested in ("auto", "bf16"):
        choice = choose_precision(requested, flags=ZEN4, llvm_ok=yes, permission=yes, llvm_bf16_ok=yes,
                                  probe=lambda: {"bf16-avx512": 400.0, "fp32": 150.0}, llvm_vnni_ok=yes)
        assert not choice.is_int8, f"precision={requested!r} picked int8"
    int8 = choose_precision("int8", flags=ZEN4, llvm_vnni_ok=yes)
    assert int8.path == "int8-vnni" and "vpdpbusd" in int8.reason and "per token" in int8.reason


def test_without_vnni_int8_runs_bf16_or_fp32_and_says_why():
    yes, no = (lambda: True), (lambda: False)  # noqa: E731
    cooper_lake_like = choose_precision("int8", flags=frozenset({"avx512f", "avx512_bf16"}), llvm_ok=no,
                                        llvm_bf16_ok=yes, llvm_vnni_ok=yes)
    assert cooper_lake_like.path == "bf16-avx512" and "lacks avx512_vnni" in cooper_lake_like.reason
    avx2 = choose_precision("int8", flags=frozenset({"avx2", "fma"}), llvm_ok=no, llvm_bf16_ok=no, llvm_vnni_ok=no)
    assert avx2.path == "fp32" and "lacks avx512_vnni: int8 runs fp32 instead" in avx2.reason


@needs_vnni
def test_int8_embeddings_close_to_fp32_on_real_weights(minilm_folder, int8_model):
    """The benchmark gates the scheme over all 2,552 STS-B test sentences (min 0.995); here the
    parity texts (real all-MiniLM-L6-v2) must stay above the same floor."""
    assert int8_model.precision == "int8-vnni"
    cosine = cosine_rows(int8_model.encode(PARITY_TEXTS), E5Model(minilm_folder).encode(PARITY_TEXTS))
    assert cosine.min() >= 0.995, f"min cosine to fp32 {cosine.min():.5f} (text {int(cosine.argmin())})"
    assert cosine.mean() >= 0.999


@needs_vnni
def test_int8_alone_equals_in_batch_any_order_any_threads(minilm_folder, int8_model):
    reference = int8_model.encode(PARITY_TEXTS)
    order = np.random.default_rng(4).permutation(len(PARITY_TEXTS))
    variants = {
        "alone": np.stack([int8_model.encode([t])[0] for t in PARITY_TEXTS]),
        "batch_size=3": int8_model.encode(PARITY_TEXTS, batch_size=3),
        "max_batch_tokens=40": int8_model.encode(PARITY_TEXTS, max_batch_tokens=40),
        "shuffled": int8_model.encode([PARITY_TEXTS[i] for i in order])[np.argsort(order)],
        "1 thread": E5Model(minilm_folder, precision="int8", num_threads=1).encode(PARITY_TEXTS),
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(encoder, "FFN_ROWS", 32)
        variants["FFN 32 rows at a time"] = int8_model.encode(PARITY_TEXTS)
    for name, emb in variants.items():
        differing = [i for i in range(len(PARITY_TEXTS)) if not np.array_equal(emb[i], reference[i])]
        assert not differing, f"int8 {name}: texts {differing} differ bitwise from the full batch"


@needs_vnni
def test_calibration_runs_once_then_the_cache_serves(minilm_folder, int8_model, monkeypatch):
    assert int8_model.packed_file is not None and int8_model.packed_file.exists()

    def must_not_run(*args, **kwargs):
        raise AssertionError("the calibration pass ran again although its result is cached")

    monkeypatch.setattr("e5np.engine.model.input_maxima", must_not_run)
    again = E5Model(minilm_folder, precision="int8")
    np.testing.assert_array_equal(again.encode(PARITY_TEXTS[:5]), int8_model.encode(PARITY_TEXTS[:5]))


def test_calibration_finds_the_layernorm_outlier_channels(minilm_folder):
    """The recorded maxima are real activations: a few channels of each LayerNorm-fed input stand
    far above the median (what SmoothQuant moves into the weights), and every value is finite."""
    maxima = calibration.input_maxima(E5Model(minilm_folder, gemm="blas"), calibration.CALIBRATION_TEXTS[:8])
    assert len(maxima) == 6 and set(maxima[0]) == {"qkv", "attn_out", "ffn_in", "ffn_out"}
    for layer in maxima:
        for amax in layer.values():
            assert amax.shape in ((384,), (1536,)) and np.isfinite(amax).all() and (amax > 0).all()
    assert max(float(a.max() / np.median(a)) for layer in maxima for a in layer.values()) > 5


def test_gemm_with_int8_is_an_error(minilm_folder):
    with pytest.raises(ValueError, match="chosen by precision"):
        E5Model(minilm_folder, gemm="vnni-int8")
    if avx512_vnni_problem() is None:
        with pytest.raises(ValueError, match="drop one of the two"):
            E5Model(minilm_folder, precision="int8", gemm="blas")


def test_forced_fallback_never_loads_the_vnni_module(minilm_folder):
    code = f"""
import json, logging, sys
logging.basicConfig(level=logging.WARNING, format="%(message)s")
from e5np import E5Model
from e5np.cli import main
model = E5Model({str(minilm_folder)!r}, precision="int8")
model.encode("hello")
main(["info", "--precision", "int8"])
print(json.dumps([model.precision, "e5np.kernels.gemm_vnni" in sys.modules]))
"""
    env = {**os.environ, "E5NP_DISABLE_VNNI": "1", "E5NP_DISABLE_AMX": "1", "E5NP_DISABLE_AVX512_BF16": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    path, loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert path == "fp32" and not loaded
    assert out.stderr.count("precision='int8': VNNI disabled by E5NP_DISABLE_VNNI") == 1
    assert "precision 'int8' -> fp32: VNNI disabled by E5NP_DISABLE_VNNI" in out.stdout


@needs_vnni
def test_a_corpus_embedded_in_int8_is_never_resumed_in_fp32(tmp_path, minilm_folder, int8_model):
    from e5np.corpus import CorpusError, embed_corpus

    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"_id": str(i), "text": t}) + "\n" for i, t in enumerate(PARITY_TEXTS[:6])),
                      encoding="utf-8")
    embed_corpus(int8_model, corpus, tmp_path / "out", progress=False)
    settings = json.loads((tmp_path / "out" / "manifest.json").read_text())["settings"]
    assert settings["precision"] == "int8-vnni" and "outlier channels" in settings["int8_scheme"]
    with pytest.raises(CorpusError, match="other settings.*precision: 'int8-vnni' -> 'fp32'"):
        embed_corpus(E5Model(minilm_folder), corpus, tmp_path / "out", progress=False)
