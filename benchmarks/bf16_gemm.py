"""This CPU's bf16 GEMM (AMX or AVX512-BF16, as ``precision="bf16"`` chooses) against e5np's fp32
GEMM and torch's bf16 and fp32 matmuls, on e5-large's shapes, interleaved (run by hand).

  python benchmarks/bf16_gemm.py [--rounds 7]

Each round runs every system once per shape, in the same order; the median of the rounds after
the first is reported in GFLOP/s. Needs the test extra (torch).
"""

import argparse
import time

import numpy as np

from e5np.runtime import choose_precision, cpuinfo
from e5np.kernels import bf16, gemm
from e5np.kernels import bf16_kernels

# (tokens M, in K, out N): a batch of 32 queries and of 32 passages through e5-large's Linear layers
SHAPES = [(448, 1024, 3072), (448, 1024, 4096), (448, 4096, 1024), (2304, 1024, 3072), (2304, 1024, 4096),
          (2304, 4096, 1024)]


def main():
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    choice = choose_precision("bf16")
    if not choice.is_bf16:
        raise SystemExit(f"no bf16 GEMM on this CPU: {choice.reason}")
    kernels = bf16_kernels("amx-bf16" if choice.path == "bf16-amx" else "avx512-bf16")
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    print(f"CPU: {cpuinfo('model name')}; bf16 path {choice.path}; GFLOP/s, medians of {args.rounds - 1} rounds\n")
    print(f"| M x K x N | e5np {choice.path} | e5np fp32 | torch bf16 | torch fp32 | e5np bf16 / torch bf16 |")
    print("|---|---|---|---|---|---|")
    for m, k, n in SHAPES:
        x, w = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((n, k)).astype(np.float32)
        x16 = np.empty((bf16.round_up(m, 32) // 16, k // 32, 16, 32), np.uint16)
        bf16.round_to_bf16_tiles_(x16, x.view(np.uint32))
        tiles, panels, out = bf16.pack_weight_bf16(w), gemm.pack_weight(w), np.empty((m, n), np.float32)
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        tx16, tw16 = tx.bfloat16(), tw.bfloat16()
        runs = {"bf16": lambda: kernels.matmul_bf16_(out, x16, tiles), "fp32": lambda: gemm.matmul_packed_(out, x, panels),
                "torch bf16": lambda: tx16 @ tw16.T, "torch fp32": lambda: tx @ tw.T}
        seconds = {name: [] for name in runs}
        for _ in range(args.rounds):  # interleaved: the machine's speed drifts
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                seconds[name].append(time.perf_counter() - start)
        rate = {name: 2 * m * k * n / np.median(s[1:]) / 1e9 for name, s in seconds.items()}
        print(f"| {m} x {k} x {n} | {rate['bf16']:.0f} | {rate['fp32']:.0f} | {rate['torch bf16']:.0f} | "
              f"{rate['torch fp32']:.0f} | {rate['bf16'] / rate['torch bf16']:.2f}x |")


if __name__ == "__main__":
    main()
