"""The kernels compiled for CPUs older than this one: AVX2 only (Haswell; as Zen 2/3 and Intel before
Ice Lake server) and generic x86-64 (SSE2). No kernel may assume 512-bit vectors for correctness.

Each target runs the kernel tests (every kernel against its NumPy twin) and the invariance test on
all-MiniLM-L6-v2 in a subprocess with ``NUMBA_CPU_NAME`` set; Numba keys its cache by target, so
these compile once per machine. The bf16 paths rule themselves out there (tested in test_bf16.py).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("cpu", ["haswell", "x86-64"])
def test_kernels_and_invariance_compiled_for_an_older_cpu(cpu):
    env = {**os.environ, "NUMBA_CPU_NAME": cpu}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                             str(TESTS / "test_kernels.py"), str(TESTS / "test_invariance.py"), "-k",
                             "not multilingual and not amx and not bf16"],
                            capture_output=True, text=True, env=env, timeout=1500)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, f"NUMBA_CPU_NAME={cpu}: {summary}\n{result.stdout[-3000:]}{result.stderr[-2000:]}"
    assert " passed" in summary and " failed" not in summary, summary


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


def test_amx_kernels_compile_for_sapphire_rapids(tmp_path):
    """The AMX GEMMs run only on an AMX CPU (test_bf16.py), but they compile anywhere: Numba's target
    set to Sapphire Rapids with the AMX features switched on, code generated, never run. Catches a
    kernel that no longer types or lowers on a machine that cannot run it."""
    import llvmlite.binding as llvm

    features = llvm.get_host_cpu_features().flatten()
    for feature in ("amx-tile", "amx-bf16"):
        features = features.replace(f"-{feature}", f"+{feature}")
    env = {**os.environ, "NUMBA_CPU_NAME": "sapphirerapids", "NUMBA_CPU_FEATURES": features,
           "NUMBA_CACHE_DIR": str(tmp_path)}  # machine code this CPU cannot run: never in the shared cache
    result = subprocess.run([sys.executable, "-c", AMX_COMPILE], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = {name: tuple(map(int, rest)) for name, *rest in map(str.split, result.stdout.strip().splitlines())}
    # each 32x32 block is 2 x 2 tdpbf16ps per k step; the plain GEMM has two block variants (direct
    # stores, and through c with the bias behind); both load the tile configuration and release it
    assert counts["_matmul_bf16"][0] >= 8 and counts["_matmul_bf16_gelu_tiles"][0] >= 4, counts
    assert all(dots and configs and releases for dots, configs, releases in counts.values()), counts
