"""e5np's Numba GEMM against NumPy's BLAS on the shapes of E5's Linear layers (run by hand).

  python benchmarks/gemm.py [--rounds 9]

Each GEMM runs its repetitions as one block, then the machine rests, so the two thread pools
(Numba's OpenMP workers and OpenBLAS's) never spin against each other; medians are reported.
Writes benchmarks/results/gemm.json and prints a Markdown table.
"""

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from e5np.kernels import gemm

# (tokens M, in K, out N): QKV, FFN in, FFN out of e5-large, at a few batch sizes in tokens.
SHAPES = [(16, 1024, 3072), (300, 1024, 3072), (512, 1024, 1024), (2048, 1024, 4096), (2048, 4096, 1024)]


def median_seconds(fn, rounds):
    fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    time.sleep(0.3)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for m, k, n in SHAPES:
        x, w = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((n, k), dtype=np.float32)
        panels, out = gemm.pack_weight(w), np.empty((m, n), np.float32)
        flops = 2 * m * k * n
        numba_s = median_seconds(lambda: gemm.matmul_packed_(out, x, panels), args.rounds)
        blas_s = median_seconds(lambda: gemm.matmul_blas(out, x, w), args.rounds)
        rows.append(dict(m=m, k=k, n=n, numba_gflops=flops / numba_s / 1e9, blas_gflops=flops / blas_s / 1e9))
    result = dict(date=time.strftime("%Y-%m-%d"), machine=platform.processor() or platform.machine(), rows=rows)
    out_path = Path(__file__).parent / "results" / "gemm.json"
    out_path.write_text(json.dumps(result, indent=2))
    print("| M x K x N | e5np Numba GEMM GFLOP/s | NumPy BLAS GFLOP/s | Numba / BLAS |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['m']} x {r['k']} x {r['n']} | {r['numba_gflops']:.0f} | {r['blas_gflops']:.0f} | "
              f"{r['numba_gflops'] / r['blas_gflops']:.2f} |")


if __name__ == "__main__":
    main()
