"""e5np on Linux aarch64 under qemu-user (issue #26): it imports, ``e5np info`` names the NEON
tile, a named subset of the kernel tests passes, and all-MiniLM-L6-v2's embeddings are bit for bit
this x86-64 machine's. Correctness only: emulated time says nothing about ARM speed.

``scripts/arm64_emulated.py prepare`` sets it up (qemu-user-static and an arm64 sysroot from
Debian's packages, aarch64 wheels from PyPI; cached in ~/.cache/e5np/arm64). It needs root and
apt-get; elsewhere the test skips and says so. About 5 minutes on 2 vCPUs with a warm Numba cache
for the emulated build, 10 with a cold one.
"""

import os
import platform
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from e5np import E5Model
from texts import PARITY_TEXTS

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import arm64_emulated  # noqa: E402

pytestmark = [
    pytest.mark.skipif(platform.machine() != "x86_64" or not shutil.which("apt-get") or os.geteuid() != 0,
                       reason="the aarch64 emulation is set up with apt-get, as root, on an x86-64 Debian host"),
    pytest.mark.timeout(1800),
]
KERNEL_SUBSET = "gemm or layernorm or attention or pool or gelu or embed"

EMBED = """
import sys, numpy as np, platform
from e5np import E5Model
from e5np.kernels import gemm_tile
assert platform.machine() == "aarch64", platform.machine()
np.save(sys.argv[2], E5Model(sys.argv[1]).encode(sys.argv[3:], log_truncation=False))
print(gemm_tile.TILE.isa, gemm_tile.MR, gemm_tile.NR)
"""


@pytest.fixture(scope="module")
def emulated():
    arm64_emulated.prepare()
    return arm64_emulated


def run(emulated, args, tmp_path, timeout=1200):
    result = emulated.run(args, capture_output=True, text=True, timeout=timeout, cwd=tmp_path)
    assert result.returncode == 0, f"{args[:3]}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result.stdout


def test_info_names_the_neon_tile(emulated, tmp_path):
    out = run(emulated, ["-m", "e5np.cli", "info"], tmp_path)
    assert "on Linux aarch64" in out and "GEMM register tile 6 x 16 (neon)" in out, out
    assert "precision 'auto' -> fp32" in out, out  # no bf16 path on ARM


def test_minilm_embeddings_equal_x86_64s_bit_for_bit(emulated, minilm_folder, tmp_path):
    out = tmp_path / "arm64.npy"
    printed = run(emulated, ["-c", EMBED, str(minilm_folder), str(out), *PARITY_TEXTS], tmp_path)
    assert printed.split() == ["neon", "6", "16"]
    here = E5Model(minilm_folder).encode(list(PARITY_TEXTS), log_truncation=False)
    there = np.load(out)
    assert np.array_equal(here, there), f"max |diff| {np.abs(here - there).max():.3g}, {(here != there).sum()} values"


def test_kernel_tests_pass(emulated, tmp_path):
    out = run(emulated, ["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                         str(REPO / "tests" / "test_kernels.py"), "-k", f"({KERNEL_SUBSET}) and not amx and not bf16"],
              tmp_path, timeout=1500)
    summary = out.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary, summary
