"""e5np against transformers, layer by layer, on every fixture model and both GEMMs; and the plain
NumPy model (``e5np.reference_model``) against both.

Gates (tests/tolerances.py): per-text cosine >= 0.999999 and max |diff| <= 1e-6 on normalized
embeddings vs HF fp32 (eager); e5np's error vs HF float64 within 1.5x HF fp32's own error, on e5np's
own GEMM (the default). With gemm="blas" that last gate measures NumPy's BLAS, not e5np: OpenBLAS's
SkylakeX sgemm on AMD Zen 4 has 1.4x the rms error of torch's on the FFN shapes, and e5-large's
embeddings on that path came to 1.55x HF's error (2.3e-7 vs 1.48e-7), every other gate met. There the
gate is scaled by that ratio, measured in the test (``blas_vs_torch_gemm_error``).
"""

import numpy as np
import pytest
import torch

import hf_reference
import tolerances as tol
from checks import assert_close, cosine_rows
from conftest import model_folder
from e5np import E5Model, reference_model
from texts import MODEL_CARD_INPUTS, MODEL_CARD_PASSAGES, MODEL_CARD_QUERIES, PARITY_TEXTS

MODELS = ["all-MiniLM-L6-v2", "paraphrase-MiniLM-L3-v2", "multilingual-e5-small-q4", "bge-small-random",
          "multilingual-e5-base-random", "tiny-head16", "tiny-head48",
          pytest.param("e5-large-random", marks=pytest.mark.slow),
          pytest.param("multilingual-e5-large-random", marks=pytest.mark.slow)]
TEXTS = tuple(PARITY_TEXTS)


def blas_vs_torch_gemm_error(config) -> float:
    """rms error vs float64 of NumPy's sgemm over torch's, on [512, H] x [H, I] (at least 1)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, config.hidden_size)).astype(np.float32)
    w = (rng.standard_normal((config.intermediate_size, config.hidden_size)) / np.sqrt(config.hidden_size)).astype(np.float32)
    exact = x.astype(np.float64) @ w.astype(np.float64).T
    rms = lambda y: np.sqrt(np.mean((y - exact) ** 2))  # noqa: E731
    return max(1.0, rms(x @ w.T) / rms((torch.from_numpy(x) @ torch.from_numpy(w).T).numpy()))


@pytest.fixture(scope="module", params=MODELS)
def case(request):
    folder = model_folder(request.param)
    model = E5Model(folder, max_length=512)
    eager = hf_reference.run(folder, TEXTS, model.max_length, attn="eager")
    return request.param, folder, model, eager


@pytest.mark.parametrize("gemm", ["blas", "numba"])
def test_every_layer_matches_hf(case, gemm):
    name, folder, _, ref = case
    model = E5Model(folder, max_length=512, gemm=gemm)
    out = model.forward(ref.input_ids, ref.attention_mask)
    mask = ref.attention_mask.astype(bool)
    assert len(out.hidden_states) == len(ref.hidden_states) == model.config.num_hidden_layers + 1
    for i, (ours, theirs) in enumerate(zip(out.hidden_states, ref.hidden_states)):
        scale = np.abs(theirs[mask]).max()
        assert_close(ours[mask], theirs[mask], atol=tol.HIDDEN_STATE_REL * scale,
                     label=f"{name} [{gemm}] hidden_states[{i}] (scale {scale:.3g})")
    assert_close(out.embeddings, ref.embeddings, atol=tol.EMBEDDING_MAX_ABS, label=f"{name} [{gemm}] forward embeddings")


@pytest.mark.parametrize("gemm", ["blas", "numba"])
def test_embeddings_match_hf_and_float64(case, gemm):
    name, folder, _, eager = case
    model = E5Model(folder, max_length=512, gemm=gemm)
    ours = model.encode(list(TEXTS), batch_size=5, normalize=True)  # several packed batches of mixed lengths
    sdpa = hf_reference.run(folder, TEXTS, model.max_length, attn="sdpa")
    exact = hf_reference.run(folder, TEXTS, model.max_length, dtype=torch.float64)

    err_ours = np.abs(ours - exact.embeddings).max()
    err_eager = np.abs(eager.embeddings - exact.embeddings).max()
    err_sdpa = np.abs(sdpa.embeddings - exact.embeddings).max()
    cos = cosine_rows(ours, eager.embeddings)
    print(f"\n{name} [{gemm}] max|diff| vs HF eager {np.abs(ours - eager.embeddings).max():.3g}, "
          f"vs HF sdpa {np.abs(ours - sdpa.embeddings).max():.3g}; min cosine {cos.min():.9f}; "
          f"vs float64: e5np {err_ours:.3g}, HF eager {err_eager:.3g}, HF sdpa {err_sdpa:.3g}")
    assert_close(ours, eager.embeddings, atol=tol.EMBEDDING_MAX_ABS, label=f"{name} [{gemm}] embeddings vs HF eager")
    assert_close(ours, sdpa.embeddings, atol=tol.EMBEDDING_MAX_ABS, label=f"{name} [{gemm}] embeddings vs HF sdpa")
    assert cos.min() >= tol.EMBEDDING_MIN_COSINE, f"min cosine {cos.min():.9f} at text {cos.argmin()}"
    # On the BLAS path the GEMMs' round-off is NumPy's BLAS's, not e5np's: the gate scales by how that
    # library's sgemm compares with torch's on this model's FFN shape, measured here (1.0 where it is as exact).
    factor = tol.VS_FLOAT64_FACTOR * (blas_vs_torch_gemm_error(model.config) if gemm == "blas" else 1.0)
    assert err_ours <= factor * err_eager, \
        f"e5np [{gemm}]'s error vs float64 {err_ours:.3g} exceeds {factor:.3g} x HF fp32's {err_eager:.3g}"
    assert ours.truncated == [TEXTS.index(t) for t in TEXTS if len(t) > 3000], "the long text must be reported truncated"


def test_model_card_scores_match_hf(case):
    """encode_queries / encode_passages: E5's prefixes (not doubled on texts that have them), or the
    model's own prompts (bge's query instruction), as the reference's input texts spell them out."""
    name, folder, model, _ = case
    queries, passages = MODEL_CARD_INPUTS[:2], MODEL_CARD_INPUTS[2:]
    spelled = [model.role_prompt("query").get("prompt", "") + q for q in (MODEL_CARD_QUERIES
               if "prompt" in model.role_prompt("query") else queries)]
    spelled += [model.role_prompt("passage").get("prompt", "") + p for p in (MODEL_CARD_PASSAGES
                if "prompt" in model.role_prompt("passage") else passages)]
    ref = hf_reference.run(folder, tuple(spelled), model.max_length)
    theirs = (ref.embeddings[:2] @ ref.embeddings[2:].T) * 100
    q = model.encode_queries(queries if "prefix" in model.role_prompt("query") else MODEL_CARD_QUERIES, normalize=True)
    p = model.encode_passages(passages if "prefix" in model.role_prompt("passage") else MODEL_CARD_PASSAGES, normalize=True)
    assert_close(q @ p.T * 100, theirs, atol=tol.SCORE_MAX_ABS, label=f"{name} model card scores")


def test_reference_model_matches_hf_and_e5np(case):
    """e5np.reference_model, the whole model in plain NumPy, on HF's own token ids: every layer
    within the hidden-state gate and the embeddings within the parity gates of HF fp32; E5Model's
    embeddings of the same ids within 1e-6 of it; and its ``embed(text)`` is ``encode(text)``."""
    name, folder, model, eager = case
    ref = reference_model.ReferenceModel(folder, max_length=model.max_length)
    mask = eager.attention_mask.astype(bool)
    ids, pooled = [row[keep] for row, keep in zip(eager.input_ids, mask)], []
    for i, seq in enumerate(ids):
        states = reference_model.forward(seq, ref.weights, ref.config)
        for layer, (ours, theirs) in enumerate(zip(states, eager.hidden_states)):
            scale = np.abs(theirs[mask]).max()
            assert_close(ours, theirs[i][mask[i]], atol=tol.HIDDEN_STATE_REL * scale,
                         label=f"{name} reference model, text {i}, hidden_states[{layer}] (scale {scale:.3g})")
        pooled.append(reference_model.pool(states[-1], ref.modules.pooling, normalize=True))
    pooled = np.stack(pooled)
    assert_close(pooled, eager.embeddings, atol=tol.EMBEDDING_MAX_ABS, label=f"{name} reference model vs HF eager")
    cos = cosine_rows(pooled, eager.embeddings)
    assert cos.min() >= tol.EMBEDDING_MIN_COSINE, f"min cosine {cos.min():.9f} at text {cos.argmin()}"
    e5np_of_ids = model.encode_tokens([seq.astype(np.int32) for seq in ids], normalize=True)
    assert_close(e5np_of_ids, pooled, atol=tol.REFERENCE_MODEL_MAX_ABS, label=f"{name} E5Model vs reference model")
    texts = MODEL_CARD_INPUTS + ["hi"]  # the default path: the folder's own prompt, pooling and Normalize
    assert_close(model.encode(texts), np.stack([ref.embed(t) for t in texts]), atol=tol.REFERENCE_MODEL_MAX_ABS,
                 label=f"{name} encode(text) vs ReferenceModel.embed(text)")
