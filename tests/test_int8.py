"""The int8 path's kernels: quantization and tile layouts against their NumPy twins (``kernels/int8.py``),
the VNNI GEMM against exact integer sums and its fused bias + GELU against the steps apart, on every
shape of the E5 family (where this CPU has VNNI)."""

import importlib

import numpy as np
import pytest

from e5np.kernels import int8
from e5np.kernels.gelu_f32 import bias_gelu_f32_
from e5np.runtime import avx512_vnni_problem

needs_vnni = pytest.mark.skipif(avx512_vnni_problem() is not None, reason=str(avx512_vnni_problem()))
RNG = np.random.default_rng(2028)
E5_SHAPES = [(384, 1536), (1536, 384), (768, 3072), (3072, 768), (1024, 4096), (4096, 1024)]


def vnni():
    return importlib.import_module("e5np.kernels.gemm_vnni")


def activations(m, k):
    """LayerNorm-like rows with a few outlier channels, and GELU-like rows (mostly positive)."""
    x = RNG.standard_normal((m, k)).astype(np.float32)
    x[:, :3] *= 20
    x[m // 2:] = np.maximum(x[m // 2:], -0.17)
    return x


def quantized_tiles(x, inv_smooth):
    xq = np.empty((int8.round_up(len(x), 32) // 16, int8.round_up(x.shape[1], 64) // 64, 16, 64), np.uint8)
    scale, zero = np.empty(len(x), np.float32), np.empty(len(x), np.int32)
    int8.quantize_rows_to_tiles_(xq, scale, zero, x, inv_smooth)
    return xq, scale, zero


@pytest.mark.parametrize("m,k", [(1, 64), (17, 384), (40, 1000), (33, 4096)])
def test_quantize_kernel_is_its_numpy_twin(m, k):
    x = activations(m, k)
    inv_smooth = RNG.uniform(0.5, 2, k).astype(np.float32)
    xq, scale, zero = quantized_tiles(x, inv_smooth)
    q, s, z = int8.quantize_rows(x, inv_smooth)
    np.testing.assert_array_equal(scale, s)
    np.testing.assert_array_equal(zero, z)
    np.testing.assert_array_equal(xq, int8.rows_to_tiles(q))  # zero padding included
    # each code is the nearest step of its row's grid: dequantized within half a step of x / smooth
    error = np.abs((q.astype(np.float32) - z[:, None]) * s[:, None] - x * inv_smooth)
    assert (error <= 0.5001 * s[:, None]).all()


def test_a_row_of_zeros_quantizes_to_its_zero_point():
    q, scale, zero = int8.quantize_rows(np.zeros((2, 64), np.float32))
    assert (scale == 1).all() and (zero == 0).all() and (q == 0).all()


def test_smoothing_keeps_the_product_and_balances_the_ranges():
    x, w = activations(8, 256), RNG.standard_normal((32, 256)).astype(np.float32)
    s = int8.smoothing(np.abs(x).max(axis=0), w, 0.5)
    np.testing.assert_allclose((x / s) @ (w * s).T, x @ w.T, rtol=1e-4, atol=1e-3)
    assert np.isclose(np.log(s).mean(), 0, atol=1e-5)
    ratio = lambda a: a.max() / np.median(a)  # noqa: E731
    assert ratio(np.abs(x / s).max(axis=0)) < ratio(np.abs(x).max(axis=0)) / 3  # outlier channels tamed


def test_weight_tiles_are_vnni_quads():
    wq = RNG.integers(-127, 128, (40, 100), dtype=np.int8)
    tiles = int8.pack_weight_int8(wq)
    assert tiles.shape == (4, 2, 16, 64)
    for n, k in [(0, 0), (5, 3), (17, 64), (39, 99)]:
        assert tiles[n // 16, k // 64, (k % 64) // 4, (n % 16) * 4 + k % 4] == wq[n, k]
    padded = np.zeros((64, 128), np.int8)
    padded[:40, :100] = wq
    assert int8.pack_weight_int8(padded).sum(dtype=np.int64) == wq.sum(dtype=np.int64)  # padding is zero


@needs_vnni
@pytest.mark.parametrize("m", [1, 15, 33, 513])
@pytest.mark.parametrize("k,n", E5_SHAPES + [(100, 37)])
def test_vnni_gemm_is_the_exact_integer_product(m, k, n):
    x, w = activations(m, k), (RNG.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
    bias = RNG.standard_normal(n).astype(np.float32)
    wq, w_scale, colsum = int8.quantize_weight(w)
    xq, scale, zero = quantized_tiles(x, np.ones(k, np.float32))
    canvas = np.full((m + 3, n), np.nan, np.float32)  # rows past m must stay untouched
    vnni().matmul_int8_(canvas[:m], xq, scale, zero, int8.pack_weight_int8(wq), w_scale, colsum)
    q, _, _ = int8.quantize_rows(x)
    np.testing.assert_array_equal(canvas[:m], int8.matmul_int8(q, scale, zero, wq, w_scale, colsum))
    assert np.isnan(canvas[m:]).all(), "the GEMM wrote past the rows of out"
    with_bias = np.empty((m, n), np.float32)
    vnni().matmul_int8_(with_bias, xq, scale, zero, int8.pack_weight_int8(wq), w_scale, colsum, bias)
    # the kernel adds the bias in the last scaling's FMA: one rounding where the twin has two
    twin = canvas[:m] + bias
    assert (np.abs(with_bias - twin) <= np.spacing(np.abs(canvas[:m])) + np.spacing(np.abs(twin))).all()
    fused = np.empty((m, n), np.float32)
    vnni().matmul_int8_(fused, xq, scale, zero, int8.pack_weight_int8(wq), w_scale, colsum, bias, gelu=True)
    bias_gelu_f32_(with_bias, np.zeros(n, np.float32))  # the GELU of the same values, on its own
    np.testing.assert_array_equal(fused, with_bias)


@needs_vnni
@pytest.mark.parametrize("m,k,n", [(33, 384, 1536), (5, 1536, 384), (40, 100, 37)])
def test_vnni_gemm_adds_the_float32_outlier_channels_in_its_epilogue(m, k, n):
    x, w = activations(m, k), (RNG.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
    bias = RNG.standard_normal(n).astype(np.float32)
    channels = np.array([0, 2, 7, k - 1])
    int8_part, outlier_w = int8.split_outliers(w, channels)
    assert not int8_part[:, channels].any() and np.array_equal(outlier_w, w[:, channels].T)
    wq, w_scale, colsum = int8.quantize_weight(int8_part)
    inv = np.ones(k, np.float32)
    inv[channels] = 0
    xq, scale, zero = quantized_tiles(x, inv)
    outlier_x = np.ascontiguousarray(x[:, channels])
    out = np.empty((m, n), np.float32)
    vnni().matmul_int8_(out, xq, scale, zero, int8.pack_weight_int8(wq), w_scale, colsum, bias, False,
                        outlier_x, outlier_w)
    q, _, _ = int8.quantize_rows(x, inv)
    twin = int8.matmul_int8(q, scale, zero, wq, w_scale, colsum, bias, outlier_x, outlier_w)
    # every running value is at most the sum of the magnitudes; kernel (FMAs) and twin each round
    # once or twice per step, so they differ by at most (steps + 1) ulps of it
    integer = int8.matmul_int8(q, scale, zero, wq, w_scale, colsum)
    magnitude = np.abs(integer) + np.abs(bias) + np.abs(outlier_x) @ np.abs(outlier_w)
    assert (np.abs(out - twin) <= (len(channels) + 2) * np.spacing(magnitude.astype(np.float32))).all()
    fused = np.empty((m, n), np.float32)
    vnni().matmul_int8_(fused, xq, scale, zero, int8.pack_weight_int8(wq), w_scale, colsum, bias, True,
                        outlier_x, outlier_w)
    bias_gelu_f32_(out, np.zeros(n, np.float32))
    np.testing.assert_array_equal(fused, out)


def test_outlier_channels_are_the_largest_after_smoothing():
    amax = np.ones(64, np.float32)
    amax[[3, 40]] = 30
    amax[9] = 8
    assert int8.outlier_channels(amax, count=2).tolist() == [3, 40]
    assert int8.outlier_channels(amax, count=3).tolist() == [3, 9, 40]
    smooth = np.ones(64, np.float32)
    smooth[40] = 10  # migrated into the weights: 3 left of 40's range
    assert int8.outlier_channels(amax, smooth, count=2).tolist() == [3, 9]
    assert int8.outlier_channels(amax, count=0).tolist() == []


@needs_vnni
def test_outlier_channels_cut_the_error_of_one_massive_channel():
    """One input channel 40x the rest (all-MiniLM-L6-v2's FFN-out input has one 4x its next): kept
    float32, it no longer takes the other channels' levels."""
    from e5np.engine.int8_linear import Int8Linear
    from e5np.engine.workspace import Workspace

    k, n = 1536, 384
    x = np.maximum(RNG.standard_normal((64, k)), -0.17).astype(np.float32)
    x[:, 11] *= 40
    w = (RNG.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
    exact = x.astype(np.float64) @ w.astype(np.float64).T
    amax = np.abs(x).max(axis=0)

    def error(count):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(int8, "OUTLIER_CHANNELS", count)
            patch.setattr(int8.outlier_channels, "__defaults__", (None, count))
            linear = Int8Linear.from_packed(Int8Linear.pack(w, amax, smooth=False), np.zeros(n, np.float32))
        assert linear.outlier_channels.tolist() == ([11] if count else [])
        out = linear.matmul(x, np.empty((64, n), np.float32), Workspace())
        return np.abs(out - exact).max() / np.abs(exact).max()

    assert error(1) < error(0) / 4


@needs_vnni
def test_vnni_gemm_rows_do_not_depend_on_the_batch():
    k, n = 384, 1536
    x, w = activations(70, k), RNG.standard_normal((n, k)).astype(np.float32)
    wq, w_scale, colsum = int8.quantize_weight(w)
    tiles, ones = int8.pack_weight_int8(wq), np.ones(k, np.float32)

    def product(rows):
        xq, scale, zero = quantized_tiles(rows, ones)
        out = np.empty((len(rows), n), np.float32)
        vnni().matmul_int8_(out, xq, scale, zero, tiles, w_scale, colsum)
        return out

    full = product(x)
    for start, stop in [(0, 1), (37, 38), (5, 45), (69, 70)]:
        np.testing.assert_array_equal(product(x[start:stop]), full[start:stop])


@needs_vnni
def test_vnni_gemm_refuses_mismatched_operands():
    wq, w_scale, colsum = int8.quantize_weight(RNG.standard_normal((32, 64)).astype(np.float32))
    xq, scale, zero = quantized_tiles(activations(4, 64), np.ones(64, np.float32))
    tiles, out = int8.pack_weight_int8(wq), np.empty((4, 32), np.float32)
    with pytest.raises(ValueError, match="tiles must be C-contiguous int8"):
        vnni().matmul_int8_(out, xq, scale, zero, tiles.view(np.uint8), w_scale, colsum)
    with pytest.raises(ValueError, match="same k steps"):
        vnni().matmul_int8_(out, xq, scale, zero, np.zeros((2, 2, 16, 64), np.int8), w_scale, colsum)
    with pytest.raises(ValueError, match="do not cover out"):
        vnni().matmul_int8_(np.empty((40, 32), np.float32), xq, scale, zero, tiles, w_scale, colsum)
    with pytest.raises(ValueError, match="bias must be float32"):
        vnni().matmul_int8_(out, xq, scale, zero, tiles, w_scale, colsum, np.zeros(31, np.float32))
