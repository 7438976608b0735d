"""What this CPU has: its flags and name, and why each bf16 GEMM can or cannot run here, known
before any bf16 code is compiled.

bf16 runs on AMX tiles (``kernels/gemm_amx.py``) where the CPU has them, else on AVX512-BF16
(``kernels/gemm_dpbf16.py``: ``vdpbf16ps``, AMD Zen 4 and later, Intel Cooper Lake), else not at
all (the exact fp32 path runs, and the reason says why). For AMX three things must hold first,
or the process dies rather than raising: the CPU has AMX (else LLVM aborts while compiling the
intrinsics), LLVM targets it, and Linux has granted this process the AMX tile state (else the
first tile instruction is SIGILL). For AVX512-BF16: the CPU flag and LLVM's target feature.
``amx_problem`` and ``avx512_bf16_problem`` say which of them fails. ``E5NP_DISABLE_AMX=1`` and
``E5NP_DISABLE_AVX512_BF16=1`` rule either out (for tests, or by choice). The int8 GEMM
(``kernels/gemm_vnni.py``: ``vpdpbusd``) needs avx512_vnni the same way (``avx512_vnni_problem``;
``E5NP_DISABLE_VNNI=1`` rules it out).
"""

import ctypes
import functools
import os
import platform

AMX_FLAGS = ("amx_tile", "amx_bf16")  # /proc/cpuinfo names
AVX512_BF16_FLAG = "avx512_bf16"
AVX512_VNNI_FLAG = "avx512_vnni"
_ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA, _SYS_ARCH_PRCTL = 0x1023, 18, 158


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


# LLVM's feature names where /proc/cpuinfo's differ (the rest only trade "-" for "_")
_LLVM_FLAG_NAMES = {"avx512bf16": "avx512_bf16", "avx512vnni": "avx512_vnni", "avxvnni": "avx_vnni"}


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags in /proc/cpuinfo's names: Linux's own list on x86 Linux, else what
    LLVM finds on this host (macOS, Windows, and ARM Linux, whose /proc/cpuinfo has no "flags")."""
    flags = cpuinfo("flags")
    if flags:
        return frozenset(flags.split())
    return llvm_host_flags()


@functools.cache
def llvm_host_flags() -> frozenset[str]:
    import llvmlite.binding as llvm

    on = [name for name, enabled in llvm.get_host_cpu_features().items() if enabled]
    return frozenset(_LLVM_FLAG_NAMES.get(name, name.replace("-", "_")) for name in on)


def cpu_name() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux x86), else LLVM's name for its core."""
    import llvmlite.binding as llvm

    return cpuinfo("model name") or f"{llvm.get_host_cpu_name()} (LLVM's name; {platform.machine()})"


def llvm_targets_amx() -> bool:
    import llvmlite.binding as llvm
    features = llvm.get_host_cpu_features()
    return bool(features.get("amx-tile")) and bool(features.get("amx-bf16"))


def llvm_targets_avx512_bf16() -> bool:
    import llvmlite.binding as llvm
    return bool(llvm.get_host_cpu_features().get("avx512bf16"))


def llvm_targets_avx512_vnni() -> bool:
    import llvmlite.binding as llvm
    return bool(llvm.get_host_cpu_features().get("avx512vnni"))


@functools.cache
def request_amx_permission() -> bool:
    """arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA): once per process, for every thread."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA) == 0


def other_target() -> str | None:
    """Why Numba compiles for another CPU than this one (NUMBA_CPU_NAME / NUMBA_CPU_FEATURES), or
    None. The flags and LLVM's host features describe this CPU, not that target: bf16
    intrinsics compiled for it would abort the process, so the bf16 paths are ruled out."""
    import numba

    if numba.config.CPU_NAME not in (None, "host") or numba.config.CPU_FEATURES:
        return f"Numba compiles for another CPU (NUMBA_CPU_NAME={numba.config.CPU_NAME})"
    return None


def amx_problem(flags: frozenset[str] | None = None, llvm_ok=llvm_targets_amx,
                permission=request_amx_permission) -> str | None:
    """Why the AMX GEMM cannot run here, or None where it can."""
    flags = cpu_flags() if flags is None else flags
    missing = [f for f in AMX_FLAGS if f not in flags]
    if _disabled("E5NP_DISABLE_AMX"):
        return "AMX disabled by E5NP_DISABLE_AMX"
    if other_target():
        return other_target()
    if missing:
        return f"this CPU lacks {', '.join(missing)}"
    if not llvm_ok():
        return "LLVM does not target AMX on this host"
    if platform.system() != "Linux":
        return "AMX needs Linux here (the kernel grants a process the tile state)"
    if not permission():
        return "Linux refused this process the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM)"
    return None


def avx512_bf16_problem(flags: frozenset[str] | None = None, llvm_ok=llvm_targets_avx512_bf16) -> str | None:
    """Why the AVX512-BF16 GEMM cannot run here, or None where it can."""
    flags = cpu_flags() if flags is None else flags
    if _disabled("E5NP_DISABLE_AVX512_BF16"):
        return "AVX512-BF16 disabled by E5NP_DISABLE_AVX512_BF16"
    if other_target():
        return other_target()
    if AVX512_BF16_FLAG not in flags:
        return f"this CPU lacks {AVX512_BF16_FLAG}"
    if not llvm_ok():
        return "LLVM does not target AVX512-BF16 on this host"
    return None


def avx512_vnni_problem(flags: frozenset[str] | None = None, llvm_ok=llvm_targets_avx512_vnni) -> str | None:
    """Why the int8 GEMM (``kernels/gemm_vnni.py``: ``vpdpbusd``) cannot run here, or None where it can."""
    flags = cpu_flags() if flags is None else flags
    if _disabled("E5NP_DISABLE_VNNI"):
        return "VNNI disabled by E5NP_DISABLE_VNNI"
    if other_target():
        return other_target()
    if AVX512_VNNI_FLAG not in flags:
        return f"this CPU lacks {AVX512_VNNI_FLAG}"
    if not llvm_ok():
        return "LLVM does not target AVX512-VNNI on this host"
    return None


def _disabled(variable: str) -> bool:
    return os.environ.get(variable, "") not in ("", "0")
