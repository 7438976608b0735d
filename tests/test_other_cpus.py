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
