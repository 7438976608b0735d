"""What the kernels are compiled for, and the register tile that fits it.

Numba compiles for this CPU, or for the one ``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES`` name
(both are needed: a name alone keeps this CPU's features, so a "haswell" build on an AVX-512 host
still uses zmm registers). The GEMM's micro-kernel keeps an MR x NR tile of float32 accumulators
in vector registers; the tile that fits depends on the register file:

| ISA | vector | registers | tile MR x NR | accumulators | per k-step |
|---|---|---|---|---|---|
| AVX-512 | 16 floats | 32 zmm | 8 x 32 | 16 | 2 loads, 8 broadcasts, 16 FMAs |
| AVX2 + FMA | 8 floats | 16 ymm | 6 x 16 | 12 | 2 loads, 6 broadcasts, 12 FMAs (BLIS/OpenBLAS Haswell sgemm) |
| SSE2 (generic x86-64) | 4 floats | 16 xmm | 6 x 8 | 12 | 2 loads, 6 broadcasts, 12 multiplies and 12 adds (no FMA unit) |
| AArch64 NEON | 4 floats | 32 q | 6 x 16 | 24 | 4 loads, 6 broadcasts, 24 fmla (8 x 12 spilled on neoverse-n1) |

Every output element is the same FMA chain over k, in the same order, whatever the tile: the tile
changes which elements are computed together, never how one is summed, so embeddings are equal bit
for bit across tiles and FMA targets (``tests/test_other_cpus.py``). Generic x86-64 (no FMA)
rounds each product before adding it, and LLVM fuses nothing there: its embeddings differ from
the FMA builds' by float32 round-off (bounded in that test).

``TARGETS`` names the builds tests and benchmarks use to claim another CPU: ``target_env(name)``
gives the environment of a process compiled for it, both variables set; the features string lists
what the target has and removes what it lacks, so nothing of this CPU leaks in.
"""

import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class Tile:
    isa: str    # "avx512", "avx2", "sse2" or "neon"
    mr: int     # rows of x per tile
    nr: int     # columns per tile (a multiple of lanes)
    lanes: int  # float32 lanes of one vector register
    fused: bool = True  # one FMA per multiply-add (False: multiply, then add)


TILES = {"avx512": Tile("avx512", 8, 32, 16), "avx2": Tile("avx2", 6, 16, 8),
         "sse2": Tile("sse2", 6, 8, 4, fused=False), "neon": Tile("neon", 6, 16, 4)}

_X86_OFF = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd", "avx512bf16",
            "avx512vnni", "avx512fp16", "avxvnni", "amx-tile", "amx-bf16", "amx-int8")
_V3 = ("sse2", "sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "avx", "avx2", "fma", "f16c", "bmi", "bmi2", "lzcnt", "movbe")
_V4 = _V3 + ("avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd")


def _features(on, off=_X86_OFF) -> str:
    return ",".join([f"+{f}" for f in on] + [f"-{f}" for f in off if f not in on])


# name -> (architecture, NUMBA_CPU_NAME, NUMBA_CPU_FEATURES)
TARGETS = {
    "x86-64-v4": ("x86_64", "x86-64-v4", _features(_V4)),            # AVX-512 (Skylake-X, Zen 4)
    "x86-64-v3": ("x86_64", "x86-64-v3", _features(_V3)),            # AVX2 + FMA (Haswell .. Zen 3)
    "x86-64": ("x86_64", "x86-64", _features(("sse2",))),           # generic: SSE2, no FMA, no AVX
    "sapphirerapids": ("x86_64", "sapphirerapids",
                       _features(_V4 + ("avx512bf16", "avx512vnni", "amx-tile", "amx-bf16", "amx-int8"))),
    "neoverse-n1": ("aarch64", "neoverse-n1", ""),                  # Graviton2, Ampere Altra
    "neoverse-v1": ("aarch64", "neoverse-v1", ""),                  # Graviton3
    "apple-m1": ("aarch64", "apple-m1", ""),
}


def target_env(name: str) -> dict[str, str]:
    """NUMBA_CPU_NAME and NUMBA_CPU_FEATURES of a process compiled for ``TARGETS[name]``."""
    _, cpu, features = TARGETS[name]
    return {"NUMBA_CPU_NAME": cpu, "NUMBA_CPU_FEATURES": features}


def compile_features() -> tuple[str, str, frozenset[str]]:
    """(architecture, CPU name, the features switched on) of what Numba compiles for in this process."""
    import llvmlite.binding as llvm
    from numba.core import config

    arch = platform.machine().lower().replace("arm64", "aarch64").replace("amd64", "x86_64")
    name = config.CPU_NAME if config.CPU_NAME not in (None, "host") else llvm.get_host_cpu_name()
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else llvm.get_host_cpu_features().flatten()
    return arch, name, frozenset(f[1:] for f in features.split(",") if f.startswith("+"))


def tile_for(arch: str, features: frozenset[str]) -> Tile:
    if arch == "aarch64":
        return TILES["neon"]
    if "avx512f" in features:
        return TILES["avx512"]
    if "avx2" in features and "fma" in features:
        return TILES["avx2"]
    return TILES["sse2"]


def compile_tile() -> Tile:
    """The tile of this process's build."""
    arch, _, features = compile_features()
    return tile_for(arch, features)
