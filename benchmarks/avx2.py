"""e5np fp32 compiled for an AVX2-only CPU (issues #16, #26), against NumPy's BLAS and torch held to
AVX2 too, on this machine (run by hand, idle machine).

  python benchmarks/avx2.py [--rounds 3] [--large] [--name avx2-zen4]

An AVX2-only CPU (Zen 2/3, Intel before Ice Lake server) is emulated on this one, each build a true
one: Numba compiles for x86-64-v3 with its CPU name *and* features (``kernels/target.py``
``target_env``: the earlier runs set only the name and measured AVX-512 code), OpenBLAS runs its
Haswell kernels (OPENBLAS_CORETYPE), torch its AVX2 kernels (ATEN_CPU_CAPABILITY=avx2) and MKL's
(MKL_ENABLE_INSTRUCTIONS=AVX2; MKL_VERBOSE's own line names the instruction set it ran, recorded).
Measured: the fp32 GEMM alone on e5-large's FFN shape (each system its own process, in turns), and
end to end all-MiniLM-L6-v2 (and with --large the e5-large fixture) on speed.py's passages and
queries, e5np and transformers (length-sorted), in turns. Writes benchmarks/results/<name>.json and .md.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))

import make_fixtures  # noqa: E402
from speed import GEMM_CODE, run_worker  # noqa: E402

from e5np.runtime import cpu_name, target_env  # noqa: E402

AVX2 = {**target_env("x86-64-v3"), "OPENBLAS_CORETYPE": "Haswell", "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
MKL_ISA = """
import torch
x = torch.ones(64, 64)
x @ x
print("ATen", torch.backends.cpu.get_cpu_capability())
"""


def mkl_instruction_set(env: dict) -> str:
    """What torch says it runs: ATen's CPU capability, and MKL_VERBOSE's header (which names the
    instruction set on Intel CPUs; on AMD it names none, so MKL's there is not proved)."""
    out = subprocess.run([sys.executable, "-c", MKL_ISA], capture_output=True, text=True,
                         env={**os.environ, **env, "MKL_VERBOSE": "1"})
    lines = (out.stdout + out.stderr).splitlines()
    header = next((line for line in lines if line.startswith("MKL_VERBOSE oneMKL")), "no MKL_VERBOSE header")
    aten = next((line for line in lines if line.startswith("ATen")), "ATen ?")
    return f"{aten}; MKL: {header.split(' for ', 1)[-1].split(', Lnx')[0]}"
SHAPE = (2048, 1024, 4096)


def gemm(which: str, env: dict) -> float:
    out = subprocess.run([sys.executable, "-c", GEMM_CODE, *map(str, SHAPE), which, "7"], capture_output=True,
                         text=True, check=True, env={**os.environ, **env})
    return float(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--large", action="store_true", help="also the e5-large fixture (about 2 minutes a run)")
    parser.add_argument("--name", default="avx2")
    args = parser.parse_args()
    cpu = cpu_name()
    mkl = {"AVX2": mkl_instruction_set(AVX2), "native": mkl_instruction_set({})}
    gemms = {f"{w} ({target})": [] for w in ("e5np", "numpy", "torch") for target in ("AVX2", "native")}
    for r in range(args.rounds):
        for key in (list(gemms) if r % 2 == 0 else list(gemms)[::-1]):
            which, target = key.split(" (")
            gemms[key].append(gemm(which, AVX2 if target == "AVX2)" else {}))
    models = {"all-MiniLM-L6-v2": make_fixtures.minilm()}
    if args.large:
        models["e5-large-random"] = make_fixtures.e5_large_random()
    systems = ["e5np", "transformers-sorted"]
    speed = {}
    for name, folder in models.items():
        for target, env in (("AVX2", AVX2), ("native", {})):
            for system in systems:
                speed[f"{name} {system} ({target})"] = []
        for r in range(args.rounds):
            for target, env in (("AVX2", AVX2), ("native", {})):
                for system in (systems if r % 2 == 0 else systems[::-1]):
                    result = run_worker(system, folder, ["passages", "queries"], env={**os.environ, **env})
                    speed[f"{name} {system} ({target})"].append(result["workloads"])
    result = {"cpu": cpu, "date": time.strftime("%Y-%m-%d %H:%M"), "gemm_gflops": gemms, "seconds": speed,
              "numba_target": AVX2, "mkl_instruction_set": mkl}
    (HERE / "results" / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    md = [f"# fp32 compiled for AVX2, {result['date']}, {cpu}, 2 vCPUs", "",
          f"GEMM alone, {'x'.join(map(str, SHAPE))}, GFLOP/s, medians of {args.rounds} rounds:", "",
          f"Numba target NUMBA_CPU_NAME={AVX2['NUMBA_CPU_NAME']} with NUMBA_CPU_FEATURES={AVX2['NUMBA_CPU_FEATURES']}. "
          f"torch with the AVX2 settings: {mkl['AVX2']}; "
          f"native: {mkl['native']}", "", "| system | AVX2 | native |", "|---|---|---|"]
    for which in ("e5np", "numpy", "torch"):
        md.append(f"| {which} | {statistics.median(gemms[f'{which} (AVX2)']):.0f} | "
                  f"{statistics.median(gemms[f'{which} (native)']):.0f} |")
    md += ["", "End to end, seconds (median of rounds; workloads of speed.py: 256 passages, 256 queries):", "",
           "| model | system | passages AVX2 | passages native | queries AVX2 | queries native |", "|---|---|---|---|---|---|"]
    for name in models:
        for system in systems:
            cell = lambda target, w: statistics.median(r[w] for r in speed[f"{name} {system} ({target})"])  # noqa: E731
            md.append(f"| {name} | {system} | {cell('AVX2', 'passages'):.2f} | {cell('native', 'passages'):.2f} | "
                      f"{cell('AVX2', 'queries'):.2f} | {cell('native', 'queries'):.2f} |")
    (HERE / "results" / f"{args.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
