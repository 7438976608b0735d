"""The register tile of each compile target, read from the generated code (issue #26).

x86 targets are real Numba builds in a subprocess (``kernels/target.py``'s ``target_env``: CPU
name and features both set): the GEMM's and attention's micro-kernel loops hold the tile's
multiply-adds and no stack access, an AVX2 build holds no zmm register, and a generic x86-64
build no AVX or FMA instruction at all. AArch64 needs no ARM machine: the NEON tile's IR (the
very ``emit_tile`` the kernels inline) is compiled by llvmlite's AArch64 back end for three cores.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import asm_loops as asm
from e5np.kernels.target import TILES, target_env

TESTS = Path(__file__).resolve().parent
X86 = [("x86-64-v4", "avx512"), ("x86-64-v3", "avx2"), ("x86-64", "sse2")]

BUILD = r"""
import json, re, sys
sys.path.insert(0, sys.argv[1])
import numba, numpy as np
import asm_loops as asm
from e5np import E5Model
from e5np.kernels import attention, gemm, gemm_tile

E5Model(sys.argv[2]).encode(["query: a few words", "passage: " + "a longer text with more words " * 9])
tile = gemm_tile.TILE
multiply = asm.X86_FMA if tile.fused else asm.X86_MULPS
report = {"tile": [tile.isa, tile.mr, tile.nr], "loops": {}, "kernels": {}}
for name, kernel in (("gemm", gemm._row_block), ("attention", attention._head_attention)):
    loops = asm.tile_loops(kernel.inspect_asm(kernel.signatures[0]), tile.mr * tile.nr // tile.lanes, multiply)
    report["loops"][name] = [[asm.count(asm.X86_ADDPS, l), asm.count(asm.X86_STACK, l)] for l in loops]
modules = [m for n, m in sys.modules.items() if n.startswith("e5np.kernels.")]
for module in modules:
    for name, kernel in vars(module).items():
        if isinstance(kernel, numba.core.registry.CPUDispatcher) and kernel.signatures:
            text = "\n".join(kernel.inspect_asm(s) for s in kernel.signatures)
            report["kernels"][f"{module.__name__}.{name}"] = {
                "zmm": len(re.findall(r"%zmm", text)), "ymm": len(re.findall(r"%ymm", text)),
                "fma": len(re.findall(r"\bvfmadd", text)), "avx": len(re.findall(r"^\s+v[a-z0-9]+\s", text, re.M))}
print(json.dumps(report))
"""


def build_report(target: str, tiny_folder, cache) -> dict:
    env = {**os.environ, **target_env(target), "NUMBA_CACHE_DIR": str(cache)}  # inspect_asm needs a fresh compile
    run = subprocess.run([sys.executable, "-c", BUILD, str(TESTS), str(tiny_folder)], capture_output=True, text=True,
                         env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("target,isa", X86)
def test_x86_builds_hold_their_tile_without_spills(target, isa, tiny_folder, tmp_path):
    report = build_report(target, tiny_folder, tmp_path)
    tile = TILES[isa]
    assert report["tile"] == [isa, tile.mr, tile.nr]
    per_k = tile.mr * tile.nr // tile.lanes
    for name, loops in report["loops"].items():  # [addps, stack accesses] of each k loop with per_k multiply-adds
        assert loops, f"{target} {name}: no loop with the tile's {per_k} multiply-adds"
        assert all(stack == 0 for _, stack in loops), f"{target} {name}: the k loop spills: {loops}"
        assert all(adds == (0 if tile.fused else per_k) for adds, _ in loops), f"{target} {name}: {loops}"
    kernels = report["kernels"]
    assert len(kernels) >= 10, sorted(kernels)  # every kernel an encode compiles
    if isa == "avx2":
        assert not {k: v for k, v in kernels.items() if v["zmm"]}, "zmm registers in an AVX2 build"
        assert sum(v["ymm"] for v in kernels.values()) > 0 and sum(v["fma"] for v in kernels.values()) > 0
    if isa == "sse2":
        assert not {k: v for k, v in kernels.items() if v["avx"] or v["fma"]}, "AVX or FMA in a generic x86-64 build"
    if isa == "avx512":
        assert sum(v["zmm"] for v in kernels.values()) > 0


@pytest.mark.parametrize("cpu", ["neoverse-n1", "neoverse-v1", "apple-m1"])
def test_the_neon_tile_fits_32_registers(cpu):
    import llvmlite.binding as llvm
    from llvmlite import ir

    from e5np.kernels.gemm_tile import emit_tile

    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    module, i64 = ir.Module("tile"), ir.IntType(64)
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [i64] * 6), "fma_tile")
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    emit_tile(builder, function.args, TILES["neon"])
    builder.ret_void()
    machine = llvm.Target.from_triple("aarch64-unknown-linux-gnu").create_target_machine(cpu=cpu, opt=3)
    parsed = llvm.parse_assembly(str(module))
    parsed.triple, parsed.data_layout = "aarch64-unknown-linux-gnu", str(machine.target_data)
    tile = TILES["neon"]
    (loop,) = asm.tile_loops(machine.emit_assembly(parsed), tile.mr * tile.nr // tile.lanes, asm.ARM_FMA)
    assert asm.count(asm.ARM_FMA, loop) == 24 and asm.count(asm.ARM_STACK, loop) == 0, "\n".join(loop)
