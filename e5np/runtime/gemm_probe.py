"""What each GEMM path measured on this CPU: the probe behind ``precision="auto"``.

``e5np info --measure`` times e5np's fp32 GEMM and each bf16 GEMM this CPU can run, alone, on
e5-large's FFN shapes, and caches the GFLOP/s per CPU model and e5np version. ``"auto"`` then
takes a bf16 path only where it measured faster than fp32 (on Sapphire Rapids a vdpbf16ps GEMM
measured slower than fp32, while AMX is faster; on Zen 4 vdpbf16ps is about 2x fp32). Without a
measurement ``"auto"`` assumes the bf16 path is faster and says that it was not measured.
"""

import json
import re
import statistics
import time
from pathlib import Path

from .. import __version__

SHAPES = ((512, 1024, 4096), (512, 4096, 1024))  # M x K x N: e5-large's FFN in and out, 512 tokens
ROUNDS = 5


def cache_file() -> Path:
    from ..kernels.jit import cache_home
    from .cpu import cpu_name

    base = Path(cache_home()) / "gemm-probe"
    cpu = re.sub(r"[^A-Za-z0-9]+", "-", cpu_name()).strip("-")
    return base / f"{cpu}-e5np-{__version__}.json"


def measured() -> dict | None:
    """{path: GFLOP/s} from the cache for this CPU and version, or None."""
    try:
        return json.loads(cache_file().read_text(encoding="utf-8"))["gflops"]
    except (OSError, ValueError, KeyError):
        return None


def measure(paths: list[str]) -> dict:
    """GFLOP/s of each path ("fp32", "bf16-amx", "bf16-avx512"), median over rounds in which the
    paths take turns (the machine's speed drifts more than the paths differ); written to the cache."""
    import numba
    import numpy as np

    from ..kernels import bf16, bf16_kernels, gemm

    rng = np.random.default_rng(0)
    runs = {}
    for m, k, n in SHAPES:
        x = rng.standard_normal((m, k)).astype(np.float32)
        w = (rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
        out = np.empty((m, n), np.float32)
        x16 = np.empty((m // 16, k // 32, 16, 32), np.uint16)
        bf16.round_to_bf16_tiles_(x16, x.view(np.uint32))
        panels, tiles = gemm.pack_weight(w), bf16.pack_weight_bf16(w)
        for path in paths:
            if path == "fp32":
                runs[(path, m, k, n)] = _call(gemm.matmul_packed_, out, x, panels)
            else:
                kernel = bf16_kernels("amx-bf16" if path == "bf16-amx" else "avx512-bf16").matmul_bf16_
                runs[(path, m, k, n)] = _call(kernel, out, x16, tiles)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    times = {key: [] for key in runs}
    for run in runs.values():
        run()  # compile and warm up
    for _ in range(ROUNDS):
        for key, run in runs.items():
            started = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - started)
    rates = {path: [] for path in paths}
    for (path, m, k, n), t in times.items():
        rates[path].append(2 * m * k * n / statistics.median(t) / 1e9)
    gflops = {path: round(statistics.mean(r), 1) for path, r in rates.items()}
    path = cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"gflops": gflops, "shapes": SHAPES, "threads": numba.config.NUMBA_NUM_THREADS,
              "date": time.strftime("%Y-%m-%d %H:%M")}
    path.write_text(json.dumps(record), encoding="utf-8")
    return gflops


def _call(kernel, *args):
    return lambda: kernel(*args)
