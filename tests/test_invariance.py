"""A text's embedding is the same float32 bits alone, in any batch, in any order, on 1 or 2 threads.

Holds on the Numba GEMM path by construction: every kernel computes a token's outputs with sums
in a fixed order that does not depend on the other tokens in the batch or on the thread count.
NumPy's BLAS does not promise this (OpenBLAS takes another code path for a single row), so the
BLAS path is only checked to agree to float32 round-off.
"""

import numpy as np
import pytest

from conftest import model_folder
from e5np import E5Model
from e5np.engine import encoder
from texts import PARITY_TEXTS

TEXTS = PARITY_TEXTS


@pytest.fixture(scope="module", params=["all-MiniLM-L6-v2", "multilingual-e5-base-random"])  # BERT, XLM-R
def models(request):
    folder = model_folder(request.param)
    fixed = {threads: E5Model(folder, gemm="numba", num_threads=threads, adapt_threads=False) for threads in (1, 2)}
    return {**fixed, "adaptive": E5Model(folder, gemm="numba", num_threads=2)}


def test_alone_equals_in_batch_any_order_any_threads(models):
    reference = models[2].encode(TEXTS, batch_size=32)
    order = np.random.default_rng(7).permutation(len(TEXTS))
    variants = {
        "alone": np.stack([models[2].encode([t])[0] for t in TEXTS]),
        "batch_size=3": models[2].encode(TEXTS, batch_size=3),
        "max_batch_tokens=40": models[2].encode(TEXTS, max_batch_tokens=40),
        "shuffled": models[2].encode([TEXTS[i] for i in order])[np.argsort(order)],
        "1 thread": models[1].encode(TEXTS),
        "adaptive threads, alone (both thread counts tried)": np.stack([models["adaptive"].encode([t])[0] for t in TEXTS * 3])[:len(TEXTS)],
        "duplicated in batch": models[2].encode(TEXTS + TEXTS[::-1])[:len(TEXTS)],
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(encoder, "FFN_ROWS", 32)  # the FFN in many row steps instead of one
        variants["FFN 32 rows at a time"] = models[2].encode(TEXTS)
    for name, emb in variants.items():
        differing = [i for i in range(len(TEXTS)) if not np.array_equal(emb[i], reference[i])]
        assert not differing, f"{name}: texts {differing} differ bitwise from the full batch"


def test_blas_path_agrees_to_round_off(minilm_folder):
    model = E5Model(minilm_folder, gemm="blas")
    batch = model.encode(TEXTS)
    alone = np.stack([model.encode([t])[0] for t in TEXTS])
    assert np.abs(batch - alone).max() < 1e-6
