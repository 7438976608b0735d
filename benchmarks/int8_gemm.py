"""The int8 VNNI GEMM (as ``precision="int8"`` runs it: 4 float32 outlier channels in the epilogue)
against this CPU's bf16 GEMM on e5-large's shapes, interleaved (run by hand).

  python benchmarks/int8_gemm.py [--rounds 7]

"int8" is the GEMM alone; "int8 + quantize" adds the per-token quantization of x that each int8
Linear runs first. Medians of the rounds after the first, GFLOP/s (2 M K N per GEMM).
"""

import argparse
import importlib
import time

import numpy as np

from bf16_gemm import SHAPES
from e5np.kernels import bf16, bf16_kernels, int8
from e5np.runtime import avx512_vnni_problem, choose_precision, cpuinfo


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if avx512_vnni_problem() is not None:
        raise SystemExit(f"no int8 GEMM on this CPU: {avx512_vnni_problem()}")
    vnni = importlib.import_module("e5np.kernels.gemm_vnni")
    choice = choose_precision("bf16")
    kernels = bf16_kernels("amx-bf16" if choice.path == "bf16-amx" else "avx512-bf16")
    rng = np.random.default_rng(0)
    print(f"CPU: {cpuinfo('model name')}; bf16 path {choice.path}; GFLOP/s, medians of {args.rounds - 1} rounds\n")
    print(f"| M x K x N | e5np int8 | e5np int8 + quantize | e5np {choice.path} | int8 / bf16 | int8 + quantize / bf16 |")
    print("|---|---|---|---|---|---|")
    for m, k, n in SHAPES:
        x, w = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((n, k)).astype(np.float32)
        channels = int8.outlier_channels(np.abs(x).max(axis=0))
        int8_part, outlier_w = int8.split_outliers(w, channels)
        wq, w_scale, colsum = int8.quantize_weight(int8_part)
        tiles8, bias = int8.pack_weight_int8(wq), np.zeros(n, np.float32)
        inv = np.ones(k, np.float32)
        inv[channels] = 0
        xq = np.zeros((int8.round_up(m, 32) // 16, k // 64, 16, 64), np.uint8)
        scale, zero = np.empty(m, np.float32), np.empty(m, np.int32)
        outlier_x = np.ascontiguousarray(x[:, channels])
        x16 = np.empty((bf16.round_up(m, 32) // 16, k // 32, 16, 32), np.uint16)
        bf16.round_to_bf16_tiles_(x16, x.view(np.uint32))
        tiles16, out = bf16.pack_weight_bf16(w), np.empty((m, n), np.float32)

        def gemm8():
            vnni.matmul_int8_(out, xq, scale, zero, tiles8, w_scale, colsum, bias, False, outlier_x, outlier_w)

        def quantized_gemm8():
            int8.quantize_rows_to_tiles_(xq, scale, zero, x, inv)
            gemm8()

        quantized_gemm8()
        runs = {"int8": gemm8, "int8 + quantize": quantized_gemm8, "bf16": lambda: kernels.matmul_bf16_(out, x16, tiles16)}
        seconds = {name: [] for name in runs}
        for _ in range(args.rounds):  # interleaved: the machine's speed drifts
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                seconds[name].append(time.perf_counter() - start)
        rate = {name: 2 * m * k * n / np.median(s[1:]) / 1e9 for name, s in seconds.items()}
        print(f"| {m} x {k} x {n} | {rate['int8']:.0f} | {rate['int8 + quantize']:.0f} | {rate['bf16']:.0f} | "
              f"{rate['int8'] / rate['bf16']:.2f}x | {rate['int8 + quantize'] / rate['bf16']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
