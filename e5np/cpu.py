"""Which precision this CPU can run, decided before any AMX code is compiled.

bf16 runs on AMX tiles (``kernels/gemm_amx.py``). Three things must hold first, or the process
dies rather than raising: the CPU has AMX (else LLVM aborts while compiling the intrinsics),
LLVM targets it, and Linux has granted this process the AMX tile state (else the first tile
instruction is SIGILL). ``choose_precision`` checks all three and says why it chose what it did.
``E5NP_DISABLE_AMX=1`` forces the fallback (for tests, or to rule AMX out).
"""

import ctypes
import functools
import os
import platform
from dataclasses import dataclass

PRECISIONS = ("fp32", "bf16", "auto")
AMX_FLAGS = ("amx_tile", "amx_bf16")  # /proc/cpuinfo names
_ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA, _SYS_ARCH_PRCTL = 0x1023, 18, 158


@dataclass(frozen=True)
class Precision:
    requested: str  # what the caller asked for: fp32, bf16 or auto
    path: str       # what runs: "fp32" or "bf16-amx"
    reason: str     # one line: why this path

    @property
    def is_bf16(self) -> bool:
        return self.path == "bf16-amx"


def cpuinfo(field: str) -> str | None:
    """A field of the first CPU in /proc/cpuinfo ("flags", "model name"); None where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":", 1)[0].strip() == field:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> frozenset[str]:
    """The kernel's CPU feature flags (Linux); empty elsewhere."""
    return frozenset((cpuinfo("flags") or "").split())


def llvm_targets_amx() -> bool:
    import llvmlite.binding as llvm
    features = llvm.get_host_cpu_features()
    return bool(features.get("amx-tile")) and bool(features.get("amx-bf16"))


@functools.cache
def request_amx_permission() -> bool:
    """arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA): once per process, for every thread."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA) == 0


def choose_precision(requested: str, flags: frozenset[str] | None = None,
                     llvm_ok=llvm_targets_amx, permission=request_amx_permission) -> Precision:
    """The path for ``requested`` on this CPU. Never raises for a CPU that lacks something:
    bf16 then falls back to exact fp32 and ``reason`` says why."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {requested!r}")
    if requested == "fp32":
        return Precision(requested, "fp32", "fp32 requested (exact parity with transformers)")
    flags = cpu_flags() if flags is None else flags
    missing = [f for f in AMX_FLAGS if f not in flags]
    if os.environ.get("E5NP_DISABLE_AMX", "") not in ("", "0"):
        problem = "AMX disabled by E5NP_DISABLE_AMX"
    elif missing:
        problem = f"this CPU lacks {', '.join(missing)}"
        if "avx512_bf16" in flags:
            problem += " (it has AVX512-BF16, but a vdpbf16ps GEMM measured slower than the fp32 one)"
    elif not llvm_ok():
        problem = "LLVM does not target AMX on this host"
    elif not permission():
        problem = "Linux refused this process the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM)"
    else:
        return Precision(requested, "bf16-amx", "bf16 GEMMs on AMX tiles (amx_tile, amx_bf16), fp32 accumulation")
    return Precision(requested, "fp32", f"{problem}: using the exact fp32 path")
