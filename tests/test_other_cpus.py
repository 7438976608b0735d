"""The kernels compiled for CPUs other than this one (issue #26), each a true build: Numba given the
CPU name *and* its features (``kernels/target.py``'s ``target_env``; a name alone keeps this CPU's
features, which made the earlier "haswell" builds AVX-512). ``test_tiles.py`` proves each build's
instructions from its code.

- AVX2 + FMA (x86-64-v3: Zen 2/3, Intel before Ice Lake server) and generic x86-64 (SSE2, no
  FMA): the kernel tests (every kernel against its NumPy twin) and the invariance tests.
- Embeddings across builds: an FMA build gives this CPU's embeddings bit for bit, whatever its
  vector width and tile (every sum runs in a written order); generic x86-64 rounds each product
  before adding it, so its embeddings differ by float32 round-off, held to the parity gate.
- AMX: the GEMMs compiled for Sapphire Rapids (code generated, never run) on any x86 host.
Numba keys its cache by target, so each build compiles once per machine.
"""

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tolerances as tol
from e5np import E5Model
from e5np.kernels.target import target_env
from texts import PARITY_TEXTS

TESTS = Path(__file__).resolve().parent
X86_HOST = platform.machine().lower() in ("x86_64", "amd64")
needs_x86 = pytest.mark.skipif(not X86_HOST, reason="x86 builds need an x86-64 host")


@needs_x86
@pytest.mark.parametrize("target", ["x86-64-v3", "x86-64"])
def test_kernels_and_invariance_compiled_for_another_cpu(target):
    env = {**os.environ, **target_env(target)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                             str(TESTS / "test_kernels.py"), str(TESTS / "test_invariance.py"), "-k",
                             "not multilingual and not amx and not bf16"],
                            capture_output=True, text=True, env=env, timeout=1500)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, f"{target}: {summary}\n{result.stdout[-3000:]}{result.stderr[-2000:]}"
    assert " passed" in summary and " failed" not in summary, summary


EMBED = """
import sys, numpy as np
from e5np import E5Model
from e5np.kernels import gemm_tile
np.save(sys.argv[2], E5Model(sys.argv[1]).encode(sys.argv[3:], log_truncation=False))
print(gemm_tile.TILE.isa)
"""


@needs_x86
@pytest.mark.parametrize("target,isa", [("x86-64-v4", "avx512"), ("x86-64-v3", "avx2"), ("x86-64", "sse2")])
def test_embeddings_across_builds(target, isa, minilm_folder, tmp_path):
    out = tmp_path / "vectors.npy"
    run = subprocess.run([sys.executable, "-c", EMBED, str(minilm_folder), str(out), *PARITY_TEXTS], capture_output=True,
                         text=True, env={**os.environ, **target_env(target)}, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == [isa]
    here, there = E5Model(minilm_folder).encode(list(PARITY_TEXTS), log_truncation=False), np.load(out)
    if isa == "sse2":  # no FMA unit: products rounded before the add (measured max |diff| 1.04e-7)
        assert np.abs(here - there).max() <= tol.EMBEDDING_MAX_ABS
        cosine = (here.astype(np.float64) * there).sum(1)
        assert cosine.min() >= tol.EMBEDDING_MIN_COSINE
    else:
        assert np.array_equal(here, there), f"{target}: max |diff| {np.abs(here - there).max():.3g}"


AMX_COMPILE = """
from numba import types
from e5np.kernels import gemm_amx
f32_1, f32_2, u16_4 = (types.Array(types.float32, 1, "C"), types.Array(types.float32, 2, "C"),
                       types.Array(types.uint16, 4, "C"))
for kernel, signature in [(gemm_amx._matmul_bf16, (f32_2, u16_4, u16_4, f32_1, types.boolean, types.intp)),
                          (gemm_amx._matmul_bf16_gelu_tiles, (u16_4, u16_4, u16_4, f32_1, types.intp, types.intp, types.intp))]:
    kernel.compile(signature)
    asm = kernel.inspect_asm(signature)
    print(kernel.__name__, asm.count("tdpbf16ps"), asm.count("ldtilecfg"), asm.count("tilerelease"))
"""


@needs_x86
def test_amx_kernels_compile_for_sapphire_rapids(tmp_path):
    """The AMX GEMMs run only on an AMX CPU (test_bf16.py), but they compile on any x86 host: Numba's
    target set to Sapphire Rapids with its features, code generated, never run. Catches a kernel
    that no longer types or lowers on a machine that cannot run it."""
    env = {**os.environ, **target_env("sapphirerapids"),
           "NUMBA_CACHE_DIR": str(tmp_path)}  # machine code this CPU may not run: never in the shared cache
    result = subprocess.run([sys.executable, "-c", AMX_COMPILE], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = {name: tuple(map(int, rest)) for name, *rest in map(str.split, result.stdout.strip().splitlines())}
    # each 32x32 block is 2 x 2 tdpbf16ps per k step; the plain GEMM has two block variants (direct
    # stores, and through c with the bias behind); both load the tile configuration and release it
    assert counts["_matmul_bf16"][0] >= 8 and counts["_matmul_bf16_gelu_tiles"][0] >= 4, counts
    assert all(dots and configs and releases for dots, configs, releases in counts.values()), counts
