"""The precision a model runs in: the caller's request, this CPU's paths, and (for ``auto``) the measurement.

fp32 is exact; "bf16" runs AMX where ``cpu.amx_problem`` finds nothing wrong, else AVX512-BF16, else
fp32 with the reason; "auto" also keeps fp32 where the bf16 path measured slower (``gemm_probe``).
"int8" (by name only: "auto" never picks it) runs the VNNI GEMMs where the CPU has avx512_vnni,
else whatever "bf16" would, and says so.
"""

from dataclasses import dataclass

from .cpu import (amx_problem, avx512_bf16_problem, avx512_vnni_problem, cpu_flags, llvm_targets_amx,
                  llvm_targets_avx512_bf16, llvm_targets_avx512_vnni, request_amx_permission)

PRECISIONS = ("fp32", "bf16", "auto", "int8")
BF16_PATHS = ("bf16-amx", "bf16-avx512")
INT8_PATH = "int8-vnni"
# the int8 scheme, as model.precision_reason and the manifests name it (kernels/int8.py, docs/precision.md)
INT8_SCHEME = ("int8 weights per channel x uint8 activations per token (asymmetric), SmoothQuant on the "
               "LayerNorm-fed GEMMs, 4 outlier channels per GEMM in float32, exact int32 sums (vpdpbusd)")


@dataclass(frozen=True)
class Precision:
    requested: str  # what the caller asked for: fp32, bf16, auto or int8
    path: str       # what runs: "fp32", "bf16-amx", "bf16-avx512" or "int8-vnni"
    reason: str     # one line: why this path

    @property
    def is_bf16(self) -> bool:
        return self.path in BF16_PATHS

    @property
    def is_int8(self) -> bool:
        return self.path == INT8_PATH


def choose_precision(requested: str, flags: frozenset[str] | None = None,
                     llvm_ok=llvm_targets_amx, permission=request_amx_permission,
                     llvm_bf16_ok=llvm_targets_avx512_bf16, probe=None,
                     llvm_vnni_ok=llvm_targets_avx512_vnni) -> Precision:
    """The path for ``requested`` on this CPU: AMX, else AVX512-BF16, else fp32. Never raises for
    a CPU that lacks something: bf16 then falls back to exact fp32 and ``reason`` says why.
    ``"auto"`` also keeps fp32 where the bf16 path measured slower (``e5np.runtime.gemm_probe``; ``probe``:
    a stand-in for its cached figures)."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {requested!r}")
    if requested == "fp32":
        return Precision(requested, "fp32", "fp32 requested (exact parity with transformers)")
    flags = cpu_flags() if flags is None else flags
    if requested == "int8":
        no_vnni = avx512_vnni_problem(flags, llvm_vnni_ok)
        if no_vnni is None:
            return Precision("int8", INT8_PATH, INT8_SCHEME)
        instead = choose_precision("bf16", flags, llvm_ok, permission, llvm_bf16_ok)
        return Precision("int8", instead.path, f"{no_vnni}: int8 runs {instead.path} instead ({instead.reason})")
    no_amx = amx_problem(flags, llvm_ok, permission)
    if no_amx is None:
        return _as_measured(Precision(requested, "bf16-amx", "bf16 GEMMs on AMX tiles (amx_tile, amx_bf16), "
                                      "fp32 accumulation"), probe)
    no_avx512 = avx512_bf16_problem(flags, llvm_bf16_ok)
    if no_avx512 is None:
        return _as_measured(Precision(requested, "bf16-avx512", f"no AMX ({no_amx}); bf16 GEMMs with vdpbf16ps "
                                      "(avx512_bf16), fp32 accumulation"), probe)
    problems = no_amx if no_avx512 == no_amx else f"{no_amx}; {no_avx512}"
    return Precision(requested, "fp32", f"{problems}: using the exact fp32 path")


def _as_measured(choice: Precision, probe) -> Precision:
    """``"auto"``: the bf16 path only where it measured faster than fp32 on this CPU (if measured)."""
    if choice.requested != "auto":
        return choice
    if probe is None:
        from .gemm_probe import measured as probe
    rates = probe() or {}
    if choice.path not in rates or "fp32" not in rates:
        return Precision("auto", choice.path, f"{choice.reason}; not measured on this CPU (e5np info --measure)")
    figures = f"{choice.path} {rates[choice.path]:.0f} GFLOP/s, fp32 {rates['fp32']:.0f}, measured on this CPU"
    if rates[choice.path] < rates["fp32"]:
        return Precision("auto", "fp32", f"{figures}: the exact fp32 path is faster here")
    return Precision("auto", choice.path, f"{choice.reason} ({figures})")
