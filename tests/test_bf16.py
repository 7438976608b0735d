"""The bf16 paths: rounding, tile layouts, the bf16 GEMMs (AMX, AVX512-BF16: each where this CPU
runs it) against float64, the model against fp32, bitwise batch invariance, and the fallback on a
CPU without either (forced)."""

import importlib
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.special import erfc

import tolerances as tol
from checks import cosine_rows
from conftest import model_folder
from e5np import E5Model
from e5np.engine import encoder
from e5np.runtime import amx_problem, avx512_bf16_problem, choose_precision
from e5np.kernels import bf16
from texts import PARITY_TEXTS

BF16 = choose_precision("bf16")  # the path this CPU runs
needs_bf16 = pytest.mark.skipif(not BF16.is_bf16, reason=f"no bf16 GEMM here: {BF16.reason}")
GEMMS = [pytest.param("gemm_amx", marks=pytest.mark.skipif(amx_problem() is not None, reason=str(amx_problem()))),
         pytest.param("gemm_dpbf16", marks=pytest.mark.skipif(avx512_bf16_problem() is not None,
                                                               reason=str(avx512_bf16_problem())))]


def kernels_of(gemm: str):
    return importlib.import_module(f"e5np.kernels.{gemm}")
RNG = np.random.default_rng(2026)


def as_float(bits: np.ndarray) -> np.ndarray:
    return bf16.bf16_bits_to_f32(bits).astype(np.float64)


def test_rounding_is_torchs_round_to_nearest_even():
    x = RNG.standard_normal(100_000).astype(np.float32) * 10.0 ** RNG.integers(-30, 30, 100_000)
    ties = (np.arange(1, 2001, dtype=np.uint32) << 16 | 0x8000).view(np.float32)  # exactly halfway
    x = np.concatenate([x, ties, -ties, np.float32([0.0, -0.0, 1e-45, 3.4e38])])
    expected = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(bf16.to_bf16_bits(x), expected)


@pytest.mark.parametrize("m,k", [(1, 32), (17, 384), (40, 70)])
def test_activation_tiles_hold_rounded_rows_and_zero_padding(m, k):
    x = RNG.standard_normal((m, k)).astype(np.float32)
    tiles = np.full((bf16.round_up(m, 32) // 16, bf16.round_up(k, 32) // 32, 16, 32), 0xFFFF, np.uint16)
    bf16.round_to_bf16_tiles_(tiles, x.view(np.uint32))
    rows = tiles.transpose(0, 2, 1, 3).reshape(tiles.shape[0] * 16, -1)
    np.testing.assert_array_equal(rows[:m, :k], bf16.to_bf16_bits(x))
    assert not rows[m:].any() and not rows[:, k:].any(), "padding must be exact zeros"


@pytest.mark.parametrize("m,k", [(1, 32), (17, 384), (40, 70), (513, 1024)])
def test_layernorm_writing_tiles_is_the_two_steps_in_one(m, k):
    """bias + residual + LayerNorm, rounded into the next GEMM's tiles in the same pass: bitwise
    the LayerNorm kernel followed by the rounding pass, padding zero."""
    from e5np.kernels.layernorm import bias_residual_layernorm_, bias_residual_layernorm_bf16_

    x, y = RNG.standard_normal((2, m, k)).astype(np.float32)
    bias, gamma, beta = RNG.standard_normal((3, k)).astype(np.float32)
    expected_x = x.copy()
    bias_residual_layernorm_(expected_x, y, bias, gamma, beta, 1e-12)
    shape = (bf16.round_up(m, 32) // 16, bf16.round_up(k, 32) // 32, 16, 32)
    expected, fused = np.empty(shape, np.uint16), np.full(shape, 0xFFFF, np.uint16)
    bf16.round_to_bf16_tiles_(expected, expected_x.view(np.uint32))
    bias_residual_layernorm_bf16_(x, fused, y, bias, gamma, beta, 1e-12)
    np.testing.assert_array_equal(x, expected_x)
    np.testing.assert_array_equal(fused, expected)


@pytest.mark.parametrize("lengths,heads,d", [([1], 1, 8), ([5, 1, 30], 3, 16), ([9, 20], 3, 24), ([40, 7], 2, 64)])
def test_attention_writing_tiles_is_the_two_steps_in_one(lengths, heads, d):
    """Attention storing its float32 result straight into the output projection's bf16 tiles:
    bitwise attention into float32 rows followed by the rounding pass, padding zero (d = 24: heads
    start inside a tile row and cross into the next)."""
    from e5np.kernels import attention_

    hidden, starts = heads * d, np.cumsum([0] + lengths)
    qkv = RNG.standard_normal((starts[-1], 3 * hidden)).astype(np.float32)
    rows = np.empty((starts[-1], hidden), np.float32)
    attention_(rows, qkv, starts, heads)
    shape = (bf16.round_up(starts[-1], 32) // 16, bf16.round_up(hidden, 32) // 32, 16, 32)
    expected, tiles = np.empty(shape, np.uint16), np.full(shape, 0xFFFF, np.uint16)
    bf16.round_to_bf16_tiles_(expected, rows.view(np.uint32))
    attention_(tiles, qkv, starts, heads)
    np.testing.assert_array_equal(tiles, expected)


def test_weight_tiles_are_vnni_pairs():
    n, k = 40, 70
    w = RNG.standard_normal((n, k)).astype(np.float32)
    tiles = bf16.pack_weight_bf16(w)
    bits = bf16.to_bf16_bits(w)
    assert tiles.shape == (64 // 16, 96 // 32, 16, 32)
    for col, kk in [(0, 0), (17, 33), (39, 69), (5, 64)]:
        j, s, r, e = col // 16, kk // 32, (kk % 32) // 2, kk % 2
        assert tiles[j, s, r, 2 * (col % 16) + e] == bits[col, kk], (col, kk)
    assert not tiles[2, :, :, 2 * (40 % 16):].any(), "padded columns must be zero"
    rows = bf16.weight_tiles_to_rows(tiles)
    np.testing.assert_array_equal(rows[:n, :k], bf16.bf16_bits_to_f32(bits))
    assert not rows[n:].any() and not rows[:, k:].any(), "padding must be exact zeros"


E5_SHAPES = [(384, 1536), (1536, 384), (768, 3072), (3072, 768), (1024, 4096), (4096, 1024)]


@pytest.mark.parametrize("gemm", GEMMS)
@pytest.mark.parametrize("m", [1, 15, 16, 17, 513])
@pytest.mark.parametrize("k,n", E5_SHAPES)
def test_bf16_gemm_against_float64_of_the_rounded_inputs(gemm, m, k, n):
    matmul_bf16_ = kernels_of(gemm).matmul_bf16_

    x = RNG.standard_normal((m, k)).astype(np.float32)
    w = (RNG.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
    x16 = np.empty((bf16.round_up(m, 32) // 16, k // 32, 16, 32), np.uint16)
    bf16.round_to_bf16_tiles_(x16, x.view(np.uint32))
    canvas = np.full((m + 3, n), np.nan, np.float32)  # rows past m must stay untouched
    matmul_bf16_(canvas[:m], x16, bf16.pack_weight_bf16(w))
    xr, wr = as_float(bf16.to_bf16_bits(x)), as_float(bf16.to_bf16_bits(w))
    # relative to sum_k |x_ik w_jk|, the scale of a dot product's round-off
    error = np.abs(canvas[:m] - xr @ wr.T) / (np.abs(xr) @ np.abs(wr).T)
    assert error.max() <= tol.BF16_GEMM_REL, f"max relative error {error.max():.3g} at M={m} K={k} N={n}"
    assert np.isnan(canvas[m:]).all(), "the GEMM wrote past the rows of out"


@pytest.mark.parametrize("gemm", GEMMS)
@pytest.mark.parametrize("m,k,n", [(1, 1024, 1024), (17, 64, 37), (40, 384, 384), (513, 768, 768)])
def test_bf16_gemm_with_split_weights_multiplies_by_hi_plus_lo(gemm, m, k, n):
    """Split weights: x @ (hi + lo)^T, hi = bf16(W), lo = bf16(W - hi), as one fp32 accumulation."""
    matmul_bf16_ = kernels_of(gemm).matmul_bf16_

    x = RNG.standard_normal((m, k)).astype(np.float32)
    w = (RNG.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
    x16 = np.empty((bf16.round_up(m, 32) // 16, bf16.round_up(k, 32) // 32, 16, 32), np.uint16)
    bf16.round_to_bf16_tiles_(x16, x.view(np.uint32))
    tiles = bf16.pack_weight_bf16(w, split=True)
    hi = as_float(bf16.to_bf16_bits(w))
    hi_lo = hi + as_float(bf16.to_bf16_bits((w - hi).astype(np.float32)))
    np.testing.assert_array_equal(bf16.weight_tiles_to_rows(tiles, split=True)[:n, :k], hi_lo)
    assert np.abs(hi_lo - w).max() <= 2.0 ** -16 * np.abs(w).max(), "hi + lo must hold 16 bits of W"
    out = np.full((m, n), np.nan, np.float32)
    matmul_bf16_(out, x16, tiles, split=True)
    xr = as_float(bf16.to_bf16_bits(x))
    error = np.abs(out - xr @ hi_lo.T) / (np.abs(xr) @ np.abs(hi_lo).T)
    assert error.max() <= tol.BF16_GEMM_REL, f"max relative error {error.max():.3g} at M={m} K={k} N={n}"
    with pytest.raises(ValueError, match="do not match"):
        matmul_bf16_(out, x16, tiles)  # split weights, called as if not


@pytest.mark.parametrize("gemm", GEMMS)
@pytest.mark.parametrize("m,k,n", [(1, 384, 1152), (17, 64, 37), (40, 1024, 3072), (513, 768, 2304)])
def test_bf16_gemm_bias_epilogue_is_the_two_steps_in_one(gemm, m, k, n):
    """The bias added to each block while the next is multiplied: bitwise the GEMM, then + bias."""
    matmul_bf16_ = kernels_of(gemm).matmul_bf16_

    x16 = np.empty((bf16.round_up(m, 32) // 16, bf16.round_up(k, 32) // 32, 16, 32), np.uint16)
    bf16.round_to_bf16_tiles_(x16, RNG.standard_normal((m, k)).astype(np.float32).view(np.uint32))
    tiles = bf16.pack_weight_bf16((RNG.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32))
    bias = RNG.standard_normal(n).astype(np.float32)
    expected, fused = np.empty((m, n), np.float32), np.full((m, n), np.nan, np.float32)
    matmul_bf16_(expected, x16, tiles)
    expected += bias
    matmul_bf16_(fused, x16, tiles, bias)
    np.testing.assert_array_equal(fused, expected)
    with pytest.raises(ValueError, match="bias must be float32"):
        matmul_bf16_(fused, x16, tiles, bias[1:])


@pytest.mark.parametrize("gemm", GEMMS)
def test_bf16_gemm_refuses_mismatched_operands(gemm):
    matmul_bf16_ = kernels_of(gemm).matmul_bf16_

    tiles = bf16.pack_weight_bf16(np.ones((64, 64), np.float32))
    x16 = np.zeros((2, 1, 16, 32), np.uint16)  # K = 32, but the weight has K = 64
    with pytest.raises(ValueError, match="do not match"):
        matmul_bf16_(np.empty((20, 64), np.float32), x16, tiles)
    with pytest.raises(ValueError, match="C-contiguous uint16"):
        matmul_bf16_(np.empty((20, 64), np.float32), np.zeros((2, 2, 16, 32), np.uint16)[:, ::-1], tiles)


def test_float32_gelu_against_float64_erf():
    from e5np.kernels.gelu_f32 import bias_gelu_f32_

    x = np.concatenate([np.linspace(-20, 20, 40_000), RNG.standard_normal(40_000) * 3]).astype(np.float32)
    x, bias = x.reshape(-1, 100), RNG.standard_normal(100).astype(np.float32)  # 100: six vectors and a rest
    y = x.copy()
    bias_gelu_f32_(y, bias)
    xb = (x + bias).astype(np.float64)  # the add rounds to float32 first, as in HF's Linear
    exact = 0.5 * xb * erfc(-xb / np.sqrt(2))
    bound = tol.GELU_F32_REL_PER_Z2 * (1 + xb ** 2 / 2) * np.abs(exact) + tol.GELU_F32_ABS
    worst = np.argmax(np.abs(y - exact) / bound)
    assert np.all(np.abs(y - exact) <= bound), f"float32 GELU off at x = {xb.flat[worst]}: {y.flat[worst]} vs {exact.flat[worst]}"


@pytest.mark.parametrize("gemm", GEMMS)
@pytest.mark.parametrize("m,k,n", [(1, 384, 1536), (17, 64, 37), (40, 1024, 4096), (513, 768, 3072)])
def test_fused_gelu_gemm_is_the_three_steps_in_one(gemm, m, k, n):
    """GEMM + bias + float32 GELU + bf16 rounding in one kernel: bitwise what the three steps give
    apart, padding rows and columns zero (the next GEMM reads them)."""
    from e5np.kernels.gelu_f32 import bias_gelu_f32_
    matmul_bf16_, matmul_bf16_gelu_tiles_ = kernels_of(gemm).matmul_bf16_, kernels_of(gemm).matmul_bf16_gelu_tiles_

    x = RNG.standard_normal((m, k)).astype(np.float32)
    w = (RNG.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
    bias = RNG.standard_normal(n).astype(np.float32)
    x16 = np.empty((bf16.round_up(m, 32) // 16, bf16.round_up(k, 32) // 32, 16, 32), np.uint16)
    bf16.round_to_bf16_tiles_(x16, x.view(np.uint32))
    tiles = bf16.pack_weight_bf16(w)
    h = np.empty((m, n), np.float32)
    matmul_bf16_(h, x16, tiles)
    bias_gelu_f32_(h, bias)
    expected = np.empty((x16.shape[0], tiles.shape[0] // 2, 16, 32), np.uint16)
    bf16.round_to_bf16_tiles_(expected, h.view(np.uint32))
    fused = np.full_like(expected, 0xFFFF)
    matmul_bf16_gelu_tiles_(fused, x16, tiles, bias, m)
    np.testing.assert_array_equal(fused, expected)


@pytest.fixture(scope="module")
def minilm_pair(minilm_folder):
    return E5Model(minilm_folder), E5Model(minilm_folder, precision="bf16")


@needs_bf16
def test_precision_reports_the_path(minilm_pair):
    fp32, bf = minilm_pair
    assert (fp32.precision, bf.precision) == ("fp32", BF16.path)
    assert ("AMX" if BF16.path == "bf16-amx" else "vdpbf16ps") in bf.precision_reason
    assert f"precision='{BF16.path}'" in repr(bf)


@needs_bf16
@pytest.mark.parametrize("name", ["all-MiniLM-L6-v2", "multilingual-e5-base-random",
                                  pytest.param("e5-large-random", marks=pytest.mark.slow),
                                  pytest.param("multilingual-e5-large-random", marks=pytest.mark.slow)])
def test_bf16_embeddings_close_to_fp32(name, minilm_pair):
    if name == "all-MiniLM-L6-v2":
        fp32, bf = minilm_pair
    else:
        folder = model_folder(name)
        fp32, bf = E5Model(folder), E5Model(folder, precision="bf16")
    texts = [t for t in PARITY_TEXTS if t.strip()]
    cosine = cosine_rows(bf.encode(texts), fp32.encode(texts))
    assert cosine.min() >= tol.BF16_MIN_COSINE, f"{name}: min cosine {cosine.min():.6f} (mean {cosine.mean():.6f})"


@needs_bf16
def test_bf16_alone_equals_in_batch_any_order_any_threads(minilm_folder, minilm_pair):
    model = minilm_pair[1]
    reference = model.encode(PARITY_TEXTS)
    order = np.random.default_rng(3).permutation(len(PARITY_TEXTS))
    variants = {
        "alone": np.stack([model.encode([t])[0] for t in PARITY_TEXTS]),
        "batch_size=3": model.encode(PARITY_TEXTS, batch_size=3),
        "max_batch_tokens=40": model.encode(PARITY_TEXTS, max_batch_tokens=40),
        "shuffled": model.encode([PARITY_TEXTS[i] for i in order])[np.argsort(order)],
        "1 thread": E5Model(minilm_folder, precision="bf16", num_threads=1).encode(PARITY_TEXTS),
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(encoder, "FFN_ROWS", 32)  # the FFN in many row steps, tiles sliced in 32-row blocks
        variants["FFN 32 rows at a time"] = model.encode(PARITY_TEXTS)
    for name, emb in variants.items():
        differing = [i for i in range(len(PARITY_TEXTS)) if not np.array_equal(emb[i], reference[i])]
        assert not differing, f"bf16 {name}: texts {differing} differ bitwise from the full batch"


def test_fallback_reasons_name_what_is_missing():
    def never():
        raise AssertionError("must not be asked")

    zen4 = frozenset({"avx512f", "avx512_bf16"})
    no_amx = choose_precision("bf16", flags=zen4, llvm_ok=never, permission=never, llvm_bf16_ok=lambda: True)
    assert no_amx.path == "bf16-avx512" and "lacks amx_tile, amx_bf16" in no_amx.reason and "vdpbf16ps" in no_amx.reason
    no_llvm = choose_precision("bf16", flags=zen4, llvm_ok=never, permission=never, llvm_bf16_ok=lambda: False)
    assert no_llvm.path == "fp32" and "LLVM does not target AVX512-BF16" in no_llvm.reason
    avx2 = choose_precision("auto", flags=frozenset({"avx2", "fma"}), llvm_ok=never, permission=never, llvm_bf16_ok=never)
    assert avx2.path == "fp32" and "lacks avx512_bf16" in avx2.reason
    refused = choose_precision("auto", flags=frozenset({"amx_tile", "amx_bf16"}), llvm_ok=lambda: True,
                               permission=lambda: False)
    assert refused.path == "fp32" and "ARCH_REQ_XCOMP_PERM" in refused.reason
    assert choose_precision("fp32").path == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        choose_precision("int4")


def test_auto_follows_the_measured_gemm_rates():
    """precision="auto" keeps fp32 where this CPU's bf16 GEMM measured slower (as vdpbf16ps did on
    Sapphire Rapids); "bf16" asked by name runs it anyway."""
    zen4, never = frozenset({"avx512f", "avx512_bf16"}), lambda: False
    kwargs = dict(flags=zen4, llvm_ok=never, permission=never, llvm_bf16_ok=lambda: True)
    slower = choose_precision("auto", probe=lambda: {"fp32": 190.0, "bf16-avx512": 150.0}, **kwargs)
    assert slower.path == "fp32" and "bf16-avx512 150 GFLOP/s, fp32 190, measured on this CPU" in slower.reason
    faster = choose_precision("auto", probe=lambda: {"fp32": 190.0, "bf16-avx512": 430.0}, **kwargs)
    assert faster.path == "bf16-avx512" and "430 GFLOP/s" in faster.reason
    unmeasured = choose_precision("auto", probe=lambda: None, **kwargs)
    assert unmeasured.path == "bf16-avx512" and "not measured" in unmeasured.reason
    assert choose_precision("bf16", probe=lambda: {"fp32": 190.0, "bf16-avx512": 150.0}, **kwargs).path == "bf16-avx512"


def test_info_measure_caches_this_cpus_figures(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "e5np", "info", "--measure"], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    cached = json.loads(next((tmp_path / "e5np" / "gemm-probe").glob("*.json")).read_text())["gflops"]
    expected = {"fp32"} | ({BF16.path} if BF16.is_bf16 else set())
    assert set(cached) == expected and all(rate > 0 for rate in cached.values())
    assert "fp32 " in out.stdout and "GFLOP/s" in out.stdout
    again = subprocess.run([sys.executable, "-m", "e5np", "info"], capture_output=True, text=True, env=env, timeout=300)
    assert f"fp32 {cached['fp32']:.0f} GFLOP/s" in again.stdout


def test_forced_fallback_never_loads_bf16_code(minilm_folder):
    """With AMX and AVX512-BF16 ruled out, bf16 runs the fp32 path, says so in one log line, and
    neither module of bf16 intrinsics is imported (on a CPU without them, compiling one aborts
    the process)."""
    code = f"""
import json, logging, sys
logging.basicConfig(level=logging.WARNING, format="%(message)s")
from e5np import E5Model
from e5np.cli import main
model = E5Model({str(minilm_folder)!r}, precision="bf16")
vector = model.encode("hello")
main(["info", "--precision", "bf16"])
loaded = [m for m in ("e5np.kernels.gemm_amx", "e5np.kernels.gemm_dpbf16") if m in sys.modules]
print(json.dumps([model.precision, loaded, float(vector[0])]))
"""
    env = {**os.environ, "E5NP_DISABLE_AMX": "1", "E5NP_DISABLE_AVX512_BF16": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    path, loaded, first = json.loads(out.stdout.strip().splitlines()[-1])
    assert path == "fp32" and not loaded
    assert first == float(E5Model(minilm_folder).encode("hello")[0]), "the fallback is the exact fp32 path"
    assert out.stderr.count("precision='bf16': AMX disabled by E5NP_DISABLE_AMX") == 1
    assert "precision 'bf16' -> fp32: AMX disabled by E5NP_DISABLE_AMX" in out.stdout


def test_another_numba_target_rules_bf16_out(monkeypatch):
    """Kernels compiled for an AVX2-only CPU (x86-64-v3: name and features) on a CPU with AMX or
    AVX512-BF16: the host's flags say yes, the target says no; compiling the intrinsics for it
    would abort, so bf16 falls back to fp32 and says why."""
    import numba

    from e5np.runtime import target_env

    target = target_env("x86-64-v3")
    monkeypatch.setattr(numba.config, "CPU_NAME", target["NUMBA_CPU_NAME"])
    monkeypatch.setattr(numba.config, "CPU_FEATURES", target["NUMBA_CPU_FEATURES"])
    choice = choose_precision("bf16", flags=frozenset({"amx_tile", "amx_bf16", "avx512_bf16"}),
                              llvm_ok=lambda: True, permission=lambda: True, llvm_bf16_ok=lambda: True)
    assert choice.path == "fp32" and "NUMBA_CPU_NAME=x86-64-v3" in choice.reason


def test_gemm_and_bf16_together_is_an_error(minilm_folder, caplog):
    if BF16.is_bf16:
        with pytest.raises(ValueError, match="drop one of the two"):
            E5Model(minilm_folder, precision="bf16", gemm="blas")
    with pytest.raises(ValueError, match="chosen by precision"):
        E5Model(minilm_folder, gemm="amx-bf16")
    with caplog.at_level(logging.INFO, logger="e5np"):
        auto = E5Model(minilm_folder, precision="auto")
    assert auto.precision == choose_precision("auto").path
