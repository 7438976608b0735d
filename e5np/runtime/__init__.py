"""Where the engine runs: this CPU and the kernels' compile target, precision, the GEMM probe behind "auto",
threads, and the stand-ins for Linux-only calls elsewhere."""

import importlib

from .cpu import (AMX_FLAGS, AVX512_BF16_FLAG, amx_problem, avx512_bf16_problem, avx512_vnni_problem, cpu_flags, cpu_name, cpuinfo,
                  other_target)
from .gemm_probe import cache_file as gemm_probe_file
from .gemm_probe import measure as measure_gemms
from .gemm_probe import measured as measured_gemms
from .portable import RangeReader, affinity_cpus, listen_exclusively, replace, stop_signals
from .precision import BF16_PATHS, PRECISIONS, Precision, choose_precision
from .threads import ThreadChoice, usable_cpus

# the kernels' side, loaded on first use: importing e5np.kernels imports Numba and every kernel
# module, which an application that only writes a manifest (corpus) or answers HTTP should not pay
_FROM_KERNELS = {"kernels_compiled": "jit", "cache_home": "jit", "kernel_cache_dir": "jit", "kernels_built_for": "jit", "TARGETS": "target", "compile_features": "target",
                 "compile_tile": "target", "target_env": "target"}

__all__ = [*_FROM_KERNELS, "AMX_FLAGS", "AVX512_BF16_FLAG", "amx_problem", "avx512_bf16_problem", "avx512_vnni_problem", "cpu_flags",
           "cpu_name", "cpuinfo", "other_target", "gemm_probe_file", "measure_gemms", "measured_gemms", "BF16_PATHS",
           "PRECISIONS", "Precision", "choose_precision", "ThreadChoice", "usable_cpus", "RangeReader",
           "affinity_cpus", "listen_exclusively", "replace", "stop_signals"]


def __getattr__(name: str):
    if name in _FROM_KERNELS:
        return getattr(importlib.import_module(f"e5np.kernels.{_FROM_KERNELS[name]}"), name)
    raise AttributeError(f"module 'e5np.runtime' has no attribute {name!r}")
