"""Probe: a bf16 GEMM on AVX512-BF16 (``vdpbf16ps``), the fallback issue #5 names for CPUs with no AMX,
against e5np's fp32 GEMM on the same machine, interleaved (run by hand; needs a CPU with avx512_bf16).

  python benchmarks/avx512_bf16_probe.py

It checks the product against float64 first. On the machine of the README's tables it ran at about
0.7x of e5np's fp32 GEMM (``vdpbf16ps`` there issues at about a third of the FMA rate), so e5np's
bf16 falls back to the exact fp32 path where AMX is missing instead of shipping this kernel.
The kernel is e5np's fp32 register tile (``kernels/gemm_tile.py``) stepping K by bf16 pairs: 8 rows
x 32 columns in 16 zmm accumulators, one x pair broadcast per row and 32 columns' pairs loaded
per step; KC pairs of the weight panel stay in L1 while a block of MB rows runs over them.
"""

import time

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from e5np.cpu import cpu_flags
from e5np.kernels import bf16, gemm
from e5np.kernels.gemm_tile import MR, NR

MB = 64   # rows per job: the x block stays in L2 while the job walks K
KC = 128  # k pairs per pass: a 16 KiB chunk of the panel stays in L1 for every tile of the block


class _BFloat(ir.types.Type):
    """LLVM's ``bfloat``, which llvmlite's IR builder does not name (the intrinsic takes <32 x bfloat>)."""
    def _to_string(self):
        return "bfloat"

    def __eq__(self, other):
        return isinstance(other, _BFloat)

    def __hash__(self):
        return hash("bfloat")


@intrinsic
def dpbf16_tile_8x32(typingctx, x_addr, x_stride, b_addr, pairs, c_addr, c_stride):
    """c[8, 32] += x[8, 2 pairs] @ b (fp32, c row stride ``c_stride`` floats). x: bf16 rows,
    ``x_stride`` bf16 apart; b: a panel of 32 columns' bf16 pairs, 64 values per pair step."""
    sig = types.void(types.intp, types.intp, types.intp, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        x_i, x_stride, b_i, pairs, c_i, c_stride = args
        i32, i64 = ir.IntType(32), ir.IntType(64)
        v16, v16i, vbf = ir.VectorType(ir.FloatType(), 16), ir.VectorType(i32, 16), ir.VectorType(_BFloat(), 32)
        dot = cgutils.get_or_insert_function(builder.module, ir.FunctionType(v16, [v16, vbf, vbf]),
                                             "llvm.x86.avx512bf16.dpbf16ps.512")
        undef = ir.Constant(v16i, ir.Undefined)
        broadcast_lane0 = ir.Constant(v16i, [0] * 16)
        x_pairs = builder.inttoptr(x_i, i32.as_pointer())      # a bf16 pair of x read as one i32
        b = builder.inttoptr(b_i, vbf.as_pointer())             # 32 columns' pairs = two <32 x bfloat>

        entry = builder.basic_block
        loop, done = builder.append_basic_block("pair_loop"), builder.append_basic_block("pair_done")
        builder.branch(loop)
        builder.position_at_end(loop)
        p = builder.phi(i64)
        acc = [builder.phi(v16) for _ in range(2 * MR)]  # row r: acc[2r] (cols 0-15), acc[2r+1] (16-31)
        b_lo = builder.load(builder.gep(b, [builder.mul(p, ir.Constant(i64, 2))]), align=2)
        b_hi = builder.load(builder.gep(b, [builder.add(builder.mul(p, ir.Constant(i64, 2)), ir.Constant(i64, 1))]), align=2)
        summed = []
        for r in range(MR):
            pair = builder.load(builder.gep(x_pairs, [builder.add(builder.mul(ir.Constant(i64, r), builder.sdiv(x_stride, ir.Constant(i64, 2))), p)]), align=2)
            a = builder.bitcast(builder.shuffle_vector(builder.insert_element(undef, pair, ir.Constant(i32, 0)), undef, broadcast_lane0), vbf)
            summed += [builder.call(dot, [acc[2 * r], a, b_lo]), builder.call(dot, [acc[2 * r + 1], a, b_hi])]
        p_next = builder.add(p, ir.Constant(i64, 1))
        builder.cbranch(builder.icmp_signed("<", p_next, pairs), loop, done)
        p.add_incoming(ir.Constant(i64, 0), entry)
        p.add_incoming(p_next, loop)
        for phi, value in zip(acc, summed):
            phi.add_incoming(ir.Constant(v16, [0.0] * 16), entry)
            phi.add_incoming(value, loop)

        builder.position_at_end(done)
        c_f = builder.inttoptr(c_i, ir.FloatType().as_pointer())
        for r in range(MR):
            for half in range(2):
                offset = builder.add(builder.mul(ir.Constant(i64, r), c_stride), ir.Constant(i64, 16 * half))
                ptr = builder.bitcast(builder.gep(c_f, [offset]), v16.as_pointer())
                builder.store(builder.fadd(builder.load(ptr, align=4), summed[2 * r + half]), ptr, align=4)
        return context.get_dummy_value()

    return sig, codegen


def pack_weight_bf16_pairs(w: np.ndarray) -> np.ndarray:
    """[N, K] float32 -> [N'/32, K'/2, 32, 2] bf16 panels: panel p, step s = k pair (2s, 2s+1) of columns 32p.."""
    n, k = w.shape
    padded = np.zeros((bf16.round_up(n, NR), bf16.round_up(k, 2)), np.uint16)
    padded[:n, :k] = bf16.to_bf16_bits(w)
    return np.ascontiguousarray(padded.reshape(padded.shape[0] // NR, NR, padded.shape[1] // 2, 2).transpose(0, 2, 1, 3))


@njit(parallel=True, cache=False)
def matmul_bf16_avx512_(out, x16, panels):
    """out[M, N] = x @ W^T; x16: x rounded to bf16 rows [M, K'] (K' even), panels: pack_weight_bf16_pairs(W)."""
    m, n = out.shape
    k_pairs = panels.shape[1]
    last_rows = np.zeros((MR, x16.shape[1]), np.uint16)  # the final partial 8-row tile, zero-padded
    full = (m // MR) * MR
    last_rows[:m - full] = x16[full:m]
    row_blocks = -(-m // MB)
    for job in prange(row_blocks * panels.shape[0]):
        rb, p = job // panels.shape[0], job % panels.shape[0]
        r_begin, r_end = rb * MB, min(m, (rb + 1) * MB)
        c = np.zeros((MB // MR, MR, NR), np.float32)
        for k0 in range(0, k_pairs, KC):  # a KC-pair chunk of the panel stays in L1 for the whole block
            b = panels[p, k0:].ctypes.data
            for t, r0 in enumerate(range(r_begin, r_end, MR)):
                x = x16[r0, 2 * k0:].ctypes.data if r0 + MR <= m else last_rows[0, 2 * k0:].ctypes.data
                dpbf16_tile_8x32(x, x16.shape[1], b, min(KC, k_pairs - k0), c[t].ctypes.data, NR)
        cols = min(NR, n - p * NR)
        for r in range(r_end - r_begin):
            out[r_begin + r, p * NR:p * NR + cols] = c[r // MR, r % MR, :cols]


def main():
    if "avx512_bf16" not in cpu_flags():  # LLVM would abort compiling vdpbf16ps
        raise SystemExit("this CPU has no AVX512-BF16")
    rng = np.random.default_rng(0)
    for m, k, n in ((17, 64, 37), (513, 1024, 4096)):
        x = rng.standard_normal((m, k)).astype(np.float32)
        w = (rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
        out = np.empty((m, n), np.float32)
        matmul_bf16_avx512_(out, _rows(x), pack_weight_bf16_pairs(w))
        xr, wr = (bf16.bf16_bits_to_f32(bf16.to_bf16_bits(a)).astype(np.float64) for a in (x, w))
        error = (np.abs(out - xr @ wr.T) / (np.abs(xr) @ np.abs(wr).T)).max()
        print(f"{m}x{k}x{n}: max error {error:.2g} of sum |x w| against float64")
        assert error < 1e-6
    for m, k, n in ((2048, 1024, 4096), (2048, 4096, 1024)):
        x, w = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((n, k)).astype(np.float32)
        x16, pairs, panels, out = _rows(x), pack_weight_bf16_pairs(w), gemm.pack_weight(w), np.empty((m, n), np.float32)
        runs = {"avx512-bf16": lambda: matmul_bf16_avx512_(out, x16, pairs), "e5np fp32": lambda: gemm.matmul_packed_(out, x, panels)}
        seconds = {name: [] for name in runs}
        for _ in range(7):  # interleaved: the machine's speed drifts
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                seconds[name].append(time.perf_counter() - start)
        rates = {name: 2 * m * k * n / np.median(s[1:]) / 1e9 for name, s in seconds.items()}
        print(f"{m}x{k}x{n}: " + ", ".join(f"{name} {r:.0f} GFLOP/s" for name, r in rates.items())
              + f"; ratio {rates['avx512-bf16'] / rates['e5np fp32']:.2f}")


def _rows(x):
    bits = bf16.to_bf16_bits(x)
    return np.ascontiguousarray(np.pad(bits, ((0, 0), (0, x.shape[1] % 2))))


if __name__ == "__main__":
    main()
