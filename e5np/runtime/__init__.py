"""Where the engine runs: this CPU and the kernels' compile target, precision, the GEMM probe behind "auto",
threads, and the stand-ins for Linux-only calls elsewhere."""

from ..kernels.jit import kernels_compiled
from ..kernels.target import TARGETS, compile_features, compile_tile, target_env
from .cpu import AMX_FLAGS, AVX512_BF16_FLAG, amx_problem, avx512_bf16_problem, cpu_flags, cpu_name, cpuinfo
from .gemm_probe import cache_file as gemm_probe_file
from .gemm_probe import measure as measure_gemms
from .gemm_probe import measured as measured_gemms
from .portable import RangeReader, affinity_cpus, listen_exclusively, replace, stop_signals
from .precision import BF16_PATHS, PRECISIONS, Precision, choose_precision
from .threads import ThreadChoice, usable_cpus

__all__ = ["kernels_compiled", "TARGETS", "compile_features", "compile_tile", "target_env", "AMX_FLAGS", "AVX512_BF16_FLAG", "amx_problem", "avx512_bf16_problem", "cpu_flags", "cpu_name", "cpuinfo",
           "gemm_probe_file", "measure_gemms", "measured_gemms", "BF16_PATHS", "PRECISIONS", "Precision",
           "choose_precision", "ThreadChoice", "usable_cpus", "RangeReader", "affinity_cpus", "listen_exclusively",
           "replace", "stop_signals"]
