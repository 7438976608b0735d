"""Every Numba kernel against its plain-NumPy twin (kernels/reference.py), edge shapes included."""

import math

import numba
import numpy as np
import pytest

import tolerances as tol
from checks import assert_close
from e5np import kernels
from e5np.engine.batching import pack_padded
from e5np.kernels.pooling import MODES as POOLING_MODES
from e5np.kernels import gemm
from e5np.kernels import reference as ref
from e5np.kernels.jobs import job_counter, next_job

rng = np.random.default_rng(0)


def randn(*shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def seq_starts(lengths):
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


TOKEN_COUNTS = [1, 2, 7, 8, 9, 33, 512]
WIDTHS = [1, 31, 32, 33, 384, 1024]


@pytest.mark.parametrize("tokens", TOKEN_COUNTS)
@pytest.mark.parametrize("hidden", [1, 5, 64, 1024])
def test_bias_residual_layernorm(tokens, hidden):
    x, y, bias = randn(tokens, hidden), randn(tokens, hidden, scale=3), randn(hidden)
    gamma, beta = 1 + randn(hidden, scale=0.2), randn(hidden, scale=0.1)
    expected = ref.bias_residual_layernorm(x, y, bias, gamma, beta, 1e-12)
    kernels.bias_residual_layernorm_(x, y, bias, gamma, beta, 1e-12)
    assert_close(x, expected, tol.ELEMENTWISE_ATOL, tol.ELEMENTWISE_RTOL, "bias_residual_layernorm_")


def test_layernorm_of_constant_row_is_beta():
    """var = 0: eps keeps it finite, as in torch (a trap for eps-free implementations)."""
    x, y = np.full((2, 8), 3.0, np.float32), np.zeros((2, 8), np.float32)
    beta = randn(8)
    kernels.bias_residual_layernorm_(x, y, np.zeros(8, np.float32), np.ones(8, np.float32), beta, 1e-12)
    assert_close(x, np.broadcast_to(beta, (2, 8)), 0, label="constant row")


@pytest.mark.parametrize("tokens", TOKEN_COUNTS)
def test_embed_layernorm(tokens):
    vocab, positions, hidden = 50, 512, 48
    word, position, token_type = randn(vocab, hidden), randn(positions, hidden), randn(2, hidden)
    gamma, beta = 1 + randn(hidden, scale=0.2), randn(hidden, scale=0.1)
    ids = rng.integers(0, vocab, tokens).astype(np.int32)
    pos = rng.integers(0, positions, tokens).astype(np.int32)
    types = rng.integers(0, 2, tokens).astype(np.int32)
    out = np.empty((tokens, hidden), np.float32)
    kernels.embed_layernorm_(out, ids, pos, types, word, position, token_type, gamma, beta, 1e-12)
    expected = ref.embed_layernorm(ids, pos, types, word, position, token_type, gamma, beta, 1e-12)
    assert_close(out, expected, tol.ELEMENTWISE_ATOL, tol.ELEMENTWISE_RTOL, "embed_layernorm_")


@pytest.mark.parametrize("tokens", TOKEN_COUNTS)
@pytest.mark.parametrize("width", [1, 37, 4096])
def test_bias_gelu(tokens, width):
    y, bias = randn(tokens, width, scale=4), randn(width)
    expected = ref.bias_gelu(y, bias)
    kernels.bias_gelu_(y, bias)
    assert_close(y, expected, tol.ELEMENTWISE_ATOL, tol.ELEMENTWISE_RTOL, "bias_gelu_")


def test_gelu_is_the_erf_form_not_tanh():
    """At x = 2 the erf GELU is 1.954500; the tanh approximation gives 1.954598."""
    y = np.array([[2.0, -1.0, 0.0]], np.float32)
    kernels.bias_gelu_(y, np.zeros(3, np.float32))
    exact = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in (2.0, -1.0, 0.0)]
    assert_close(y[0], exact, 1e-7, label="gelu(2, -1, 0)")


def test_add_bias():
    y, bias = randn(9, 33), randn(33)
    expected = y + bias
    kernels.add_bias_(y, bias)
    assert_close(y, expected, 0, label="add_bias_")


@pytest.mark.parametrize("m", [1, 7, 8, 9, 17, 512])
@pytest.mark.parametrize("k,n", [(1, 1), (31, 33), (64, 96), (384, 1536), (1024, 1024)])
def test_gemm_packed_and_blas(m, k, n):
    x, w = randn(m, k), randn(n, k)
    expected = ref.matmul(x, w)
    scale = np.sqrt(k) * np.abs(x).max() * np.abs(w).max()  # float32 accumulation error grows with K
    for name, run in [("matmul_packed_", lambda out: kernels.matmul_packed_(out, x, kernels.pack_weight(w))),
                      ("matmul_blas", lambda out: kernels.matmul_blas(out, x, w))]:
        out = np.full((m, n), np.nan, np.float32)
        run(out)
        assert_close(out, expected, tol.ACCUMULATING_REL * scale, label=f"{name} {m}x{k}x{n}")


@pytest.mark.parametrize("n,k", [(1, 1), (70, 200), (96, 33)])
def test_pack_weight(n, k):
    """The parallel packing kernel makes the reference's panels exactly (padding zero), from
    writable arrays and from read-only ones (checkpoint memory maps)."""
    w = randn(n, k)
    expected = ref.pack_weight(w, gemm.NR)
    assert np.array_equal(kernels.pack_weight(w), expected)
    w.flags.writeable = False
    assert np.array_equal(kernels.pack_weight(w), expected)


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (5, 64, 40), (37, 200, 70), (64, 130, 600), (130, 65, 96)])
def test_packing_x_changes_no_bit(m, k, n):
    """x packed into micro-panels (``gemm.packs_x``) or read as rows: the same FMA chains, the same
    bits, partial tiles and a reused, larger buffer included."""
    x, panels = randn(m, k), kernels.pack_weight(randn(n, k))
    rows, packed = np.empty((m, n), np.float32), np.full((m, n), np.nan, np.float32)
    kernels.matmul_packed_(rows, x, panels, pack_x=False)
    buffer = np.full(gemm.x_panel_size(m + 7, k + 3), np.nan, np.float32)
    kernels.matmul_packed_(packed, x, panels, buffer, pack_x=True)
    assert np.array_equal(rows, packed)


def test_gemm_rows_do_not_depend_on_the_batch():
    """Each output row is the same float32 bits whatever rows surround it (tile edges included)."""
    x, panels = randn(37, 200), kernels.pack_weight(randn(70, 200))
    full = np.empty((37, 70), np.float32)
    kernels.matmul_packed_(full, x, panels)
    for lo, hi in [(0, 1), (5, 6), (3, 20), (30, 37), (8, 16)]:
        part = np.empty((hi - lo, 70), np.float32)
        kernels.matmul_packed_(part, np.ascontiguousarray(x[lo:hi]), panels)
        assert np.array_equal(part, full[lo:hi]), f"rows {lo}:{hi} differ from the same rows in a batch of 37"


@numba.njit(parallel=True)
def _take_every_job(jobs, threads):
    """How often each job number was handed out, by workers that each take the next free job."""
    taken = np.zeros(jobs, np.int64)
    counter = job_counter()
    for _ in numba.prange(threads):
        while True:
            job = next_job(counter)
            if job >= jobs:
                break
            taken[job] += 1  # no race: each number reaches one worker only
    return taken


def test_next_job_hands_every_job_to_exactly_one_worker():
    """The shared job counter of the parallel kernels: no job skipped, none done twice (a counter
    that is not atomic hands some numbers to both workers)."""
    for _ in range(5):
        assert (_take_every_job(200_000, 2) == 1).all()


def test_exp_scores_within_two_ulp():
    x = np.linspace(-87, 0, 200_001).astype(np.float32)  # max 0: the kernel's exponent is x itself
    out = np.zeros(200_016, np.float32)
    out[:len(x)] = x
    total = kernels.exp_scores_(out, len(x), np.float32(1))
    exact = np.exp(x.astype(np.float64))
    rel = np.abs(out[:len(x)] - exact) / exact
    assert rel.max() <= tol.EXP_REL, f"max relative error {rel.max():.3g} at x = {x[rel.argmax()]}"
    assert abs(total - out[:len(x)].astype(np.float64).sum()) <= 1e-12 * total
    below = np.zeros(16, np.float32)
    below[:4] = [0.0, -88.0, -200.0, -np.inf]
    kernels.exp_scores_(below, 4, np.float32(1))
    assert (below[1:4] >= 0).all() and (below[1:4] < 2e-38).all()  # clamped: tiny, never garbage


@pytest.mark.parametrize("n", [1, 7, 8, 9, 80, 1024])
def test_row_reductions(n):
    from e5np.kernels.reductions import row_sum_f64, row_sum_sq_dev_f64

    s = randn(n, scale=100)
    exact = s.astype(np.float64)
    assert abs(row_sum_f64(s) - exact.sum()) <= 1e-12 * np.abs(exact).sum()
    mean = exact.mean()
    assert abs(row_sum_sq_dev_f64(s, mean) - ((exact - mean) ** 2).sum()) <= 1e-12 * ((exact - mean) ** 2).sum()


@pytest.mark.parametrize("n", [1, 2, 15, 16, 17, 100, 512])
@pytest.mark.parametrize("spread", [0.0, 1.0, 30.0, 1e4])
def test_exp_scores_give_softmax(n, spread):
    """exp(s * scale - max) over the first n lanes of a buffer padded to 16, divided by the returned
    sum, is softmax(s * scale); the padding is untouched."""
    s = randn(n, scale=spread) if spread else np.full(n, 3.0, np.float32)
    scale = np.float32(1 / np.sqrt(48))
    expected = ref.softmax(s * scale)  # float32 product first, as HF scales the scores
    out = np.full(-(-n // 16) * 16, 7.5, np.float32)
    out[:n] = s
    total = kernels.exp_scores_(out, n, scale)
    assert out[:n].max() == 1.0, "the largest score's exponential is exp(0)"
    assert_close((out[:n] / total).astype(np.float32), expected, 1e-12, tol.ELEMENTWISE_RTOL, f"n={n} spread={spread}")
    assert (out[n:] == 7.5).all(), "lanes past n were written"


def test_exp_scores_refuse_a_row_without_room():
    with pytest.raises(ValueError, match="rounded up to 16"):
        kernels.exp_scores_(np.zeros(17, np.float32), 17, np.float32(1))
    with pytest.raises(ValueError, match="rounded up to 16"):
        kernels.exp_scores_(np.zeros(64, np.float32)[::2], 17, np.float32(1))


def test_gemm_refuses_strided_inputs():
    x, panels = randn(16, 128), kernels.pack_weight(randn(40, 64))
    out = np.empty((16, 40), np.float32)
    with pytest.raises(ValueError, match="rows of x must be contiguous"):
        kernels.matmul_packed_(out, x[:, ::2], panels)  # every other column: K = 64, inner stride 8 bytes
    with pytest.raises(ValueError, match="rows of x must be contiguous"):
        kernels.matmul_packed_(out, np.asfortranarray(x[:, :64]), panels)
    with pytest.raises(ValueError, match="panels must be"):
        kernels.matmul_packed_(out, np.ascontiguousarray(x[:, :64]), panels[:, :, ::-1])


@pytest.mark.parametrize("lengths", [[1], [2, 1], [5, 1, 9], [512], [3, 512, 17]])
@pytest.mark.parametrize("heads,d", [(1, 8), (4, 16), (2, 64)])
def test_attention(lengths, heads, d):
    hidden = heads * d
    starts = seq_starts(lengths)
    qkv = randn(starts[-1], 3 * hidden, scale=2)
    out = np.full((starts[-1], hidden), np.nan, np.float32)
    kernels.attention_(out, qkv, starts, heads)
    scale = np.sqrt(max(lengths)) * np.abs(qkv[:, 2 * hidden:]).max()  # P @ V: float32 sums of n values
    assert_close(out, ref.attention(qkv, starts, heads), tol.ACCUMULATING_REL * scale,
                 label=f"attention_ {lengths} heads={heads} d={d}")


def test_packed_attention_equals_hf_masked_padded_attention():
    """Packing drops padding keys; HF adds float32-min to them instead. Same numbers."""
    heads, d, lengths = 2, 16, [5, 2, 7]
    hidden, L = heads * d, max(lengths)
    mask = np.array([[1] * n + [0] * (L - n) for n in lengths], np.float32)
    padded = randn(len(lengths), L, 3 * hidden)
    q, k, v = (padded[..., i * hidden:(i + 1) * hidden].reshape(len(lengths), L, heads, d).transpose(0, 2, 1, 3)
               for i in range(3))
    expected = ref.attention_padded(q, k, v, mask).transpose(0, 2, 1, 3).reshape(len(lengths), L, hidden)
    batch = pack_padded(np.zeros(mask.shape, np.int64), mask)
    qkv = padded[mask.astype(bool)]
    out = np.empty((len(qkv), hidden), np.float32)
    kernels.attention_(out, qkv, batch.seq_starts, heads)
    assert_close(out, expected[mask.astype(bool)], 1e-6, label="packed vs HF-masked attention")


@pytest.mark.parametrize("lengths", [[1], [3, 1, 0, 8], [512, 2]])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("mode", POOLING_MODES)
def test_pool(lengths, normalize, mode):
    starts = seq_starts(lengths)
    x = randn(starts[-1], 40)
    out = np.empty((len(lengths), 40), np.float32)
    kernels.pool_(out, x, starts, POOLING_MODES[mode], normalize)
    assert_close(out, ref.pool(x, starts, mode, normalize), tol.ELEMENTWISE_ATOL, tol.ELEMENTWISE_RTOL, f"pool_ {mode}")
    if 0 in lengths:
        assert not out[lengths.index(0)].any(), "an empty sequence pools to zeros, as sentence-transformers' clamp does"


def test_kernel_cache_is_keyed_by_every_kernel_source(tmp_path):
    """Numba keys a cached kernel by its own file; kernels inline intrinsics from other files, so
    e5np's cache folder is named by a hash of all of them (a change anywhere compiles anew)."""
    from pathlib import Path

    from e5np.kernels import gemm, jit

    files = [tmp_path / "tile.py", tmp_path / "gemm.py"]
    for path in files:
        path.write_text("x = 1\n")
    before = jit.source_digest(files)
    files[0].write_text("x = 2\n")
    assert jit.source_digest(files) != before
    assert jit.CACHE_DIR.endswith(jit.source_digest(Path(jit.__file__).parent.glob("*.py")))
    assert gemm._matmul_packed._cache._cache_path.startswith(jit.CACHE_DIR)
