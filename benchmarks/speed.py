"""e5np against its CPU peers, same machine, same run (run by hand, on an idle machine).

  python benchmarks/speed.py [--rounds 3] [--models e5-large-random all-MiniLM-L6-v2] [--systems ...]

Every system runs in its own process, in turns (the order rotates each round), on the workloads
of workloads.py; each process reports its load time, time from process start to its first
embedding, seconds per workload and peak RSS. Also measured: cold start of a new process with
Numba's cache warm and empty, and the GEMM rates alone (fp32: NumPy BLAS, torch, e5np; bf16:
torch, e5np on AMX). Systems are in benchmarks/peers.py: fp32 ones, then e5np bf16, transformers
bf16 on sorted input and ONNX Runtime dynamic int8 on sorted input.
Writes benchmarks/results/speed.json, speed.md and speed.png. Needs the test and bench extras.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))

from peers import SYSTEMS, load_system  # noqa: E402


# --- one system, in its own process ---------------------------------------------------------

def worker(system: str, folder: str, workloads: list[str], started: float) -> dict:
    from workloads import make_workload
    t0 = time.time()
    encode = load_system(system, folder)
    load_s = time.time() - t0
    encode(["query: hello world"])
    first_s = time.time() - started
    result = {"system": system, "load_s": load_s, "first_embedding_s": first_s, "workloads": {}}
    for name in workloads:
        texts = make_workload(name, Path(folder) / "tokenizer.json")
        t = time.perf_counter()
        encode(texts)
        result["workloads"][name] = time.perf_counter() - t
        if name == "passages":
            result["peak_rss_passages_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return result


# --- the driver -----------------------------------------------------------------------------

def real_tokens(folder: Path, name: str) -> int:
    from workloads import make_workload
    from e5np.engine.tokenization import ModelTokenizer
    tokenizer = ModelTokenizer.from_folder(folder, 512)
    return sum(len(ids) for ids in tokenizer.tokenize(make_workload(name, folder / "tokenizer.json")).ids)


def run_worker(system, folder, workloads, env=None):
    cmd = [sys.executable, __file__, "--worker", system, "--folder", str(folder), "--workloads", ",".join(workloads),
           "--started", repr(time.time())]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"{system} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cold_start(system, folder):
    """Wall time of a new process: import, load, embed one text."""
    t = time.time()
    run_worker(system, folder, [])
    return time.time() - t


GEMM_CODE = """
import sys, time, numpy as np
m, k, n, which, rounds = *map(int, sys.argv[1:4]), sys.argv[4], int(sys.argv[5])
x = np.random.default_rng(0).standard_normal((m, k), dtype=np.float32)
w = np.random.default_rng(1).standard_normal((n, k), dtype=np.float32)
def med(f):
    f(); ts = []
    for _ in range(rounds):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return 2 * m * k * n / np.median(ts) / 1e9
out = np.empty((m, n), np.float32)
if which == "numpy":
    print(med(lambda: np.matmul(x, w.T, out=out)))
elif which.startswith("torch"):
    import torch
    torch.set_num_threads(2)
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    if which == "torch-bf16":
        tx, tw = tx.bfloat16(), tw.bfloat16()
    print(med(lambda: tx @ tw.T))
elif which == "e5np":
    from e5np.kernels import gemm
    p = gemm.pack_weight(w)
    print(med(lambda: gemm.matmul_packed_(out, x, p)))
else:  # e5np-bf16: the bf16 GEMM alone (AMX, else AVX512-BF16), activations already in bf16 tiles (as torch's are bf16)
    from e5np.runtime import choose_precision
    from e5np.kernels import bf16_kernels
    path = choose_precision("bf16").path
    assert path != "fp32", "no bf16 path on this CPU"
    matmul_bf16_ = bf16_kernels("amx-bf16" if path == "bf16-amx" else "avx512-bf16").matmul_bf16_
    from e5np.kernels import bf16
    x16 = np.empty((m // 16, k // 32, 16, 32), np.uint16)
    bf16.round_to_bf16_tiles_(x16, x.view(np.uint32))
    tiles = bf16.pack_weight_bf16(w)
    print(med(lambda: matmul_bf16_(out, x16, tiles)))
"""
GEMM_SHAPES = {"fp32": [(2048, 1024, 4096)], "bf16": [(2048, 1024, 4096), (2048, 4096, 1024)]}
GEMM_SYSTEMS = {"fp32": ("numpy", "torch", "e5np"), "bf16": ("torch-bf16", "e5np-bf16")}


def gemm_rates(rounds=5, reps=7) -> dict:
    """GFLOP/s of each GEMM alone on e5-large's FFN shapes (M x K x N): fp32 (NumPy's BLAS, torch,
    e5np) and bf16 (torch, e5np on AMX or AVX512-BF16). Each measurement is its own process (median of ``reps``
    products); the systems of a shape take turns, ``rounds`` times, so that each round compares
    them at nearly the same moment: the machine's speed drifts by more than their difference."""
    rates = {}
    for precision, systems in GEMM_SYSTEMS.items():
        for m, k, n in GEMM_SHAPES[precision]:
            per_round = {which: [] for which in systems}
            for r in range(rounds):
                for which in systems[r % len(systems):] + systems[:r % len(systems)]:
                    per_round[which].append(float(subprocess.run(
                        [sys.executable, "-c", GEMM_CODE, str(m), str(k), str(n), which, str(reps)],
                        capture_output=True, text=True, check=True).stdout))
            rates[f"{precision} {m}x{k}x{n}"] = per_round
    return rates


def gemm_summary(per_round: dict) -> str:
    """Median GFLOP/s of each system, and e5np's per-round ratio to each peer (median [min..max])."""
    mine = next(s for s in per_round if s.startswith("e5np"))
    parts = [f"{s} {np.median(v):.0f}" for s, v in per_round.items()]
    for peer in (s for s in per_round if s != mine):
        ratios = np.array(per_round[mine]) / np.array(per_round[peer])
        parts.append(f"{mine} / {peer} {np.median(ratios):.2f} [{ratios.min():.2f}..{ratios.max():.2f}]")
    return ", ".join(parts)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker")
    parser.add_argument("--folder")
    parser.add_argument("--workloads", default="passages,queries,long")
    parser.add_argument("--started", type=float)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=["e5-large-random", "all-MiniLM-L6-v2"],
                        help="none: the GEMM probes only")
    parser.add_argument("--systems", nargs="+", default=SYSTEMS, choices=SYSTEMS)
    parser.add_argument("--name", default="speed", help="results/<name>.json, .md and .png (a partial run: another name)")
    args = parser.parse_args()
    if args.worker:
        workloads = [w for w in args.workloads.split(",") if w]
        print(json.dumps(worker(args.worker, args.folder, workloads, args.started)))
        return

    import make_fixtures
    folders = {"e5-large-random": make_fixtures.e5_large_random(), "all-MiniLM-L6-v2": make_fixtures.minilm()}
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
              "versions": versions(), "gemm_gflops": gemm_rates(), "models": {}}
    for shape, per_round in report["gemm_gflops"].items():
        print(f"GEMM {shape}: {gemm_summary(per_round)}", flush=True)
    workloads = ["passages", "queries", "long"]
    for model in args.models:
        folder = folders[model]
        entry = report["models"][model] = {"tokens": {w: real_tokens(folder, w) for w in workloads},
                                           "texts": {"passages": 256, "queries": 256, "long": 32}, "runs": []}
        for system in args.systems:  # one untimed run each: exports the ONNX model, warms caches
            if system.startswith("onnxruntime"):
                run_worker(system, folder, [])
        for r in range(args.rounds):
            order = args.systems[r % len(args.systems):] + args.systems[:r % len(args.systems)]
            for system in order:
                result = run_worker(system, folder, workloads)
                result["round"] = r
                entry["runs"].append(result)
                print(model, r, system, {w: round(s, 2) for w, s in result["workloads"].items()}, flush=True)
        with tempfile.TemporaryDirectory() as empty_cache:
            entry["cold_start_s"] = {s: cold_start(s, folder) for s in args.systems}
            env = {**os.environ, "NUMBA_CACHE_DIR": empty_cache}
            t = time.time()
            run_worker("e5np", folder, [], env=env)
            entry["cold_start_s"]["e5np (empty Numba cache)"] = time.time() - t
        entry["weights_mib"] = (folder / "model.safetensors").stat().st_size / 2**20  # the unit of ru_maxrss / 1024
    out = HERE / "results"
    (out / f"{args.name}.json").write_text(json.dumps(report, indent=1))
    (out / f"{args.name}.md").write_text(table(report))
    print(table(report))
    if report["models"]:
        chart(report, out / f"{args.name}.png")


def versions() -> dict:
    import importlib.metadata as md
    return {p: md.version(p) for p in ("e5np", "numpy", "numba", "torch", "transformers", "sentence-transformers",
                                        "onnxruntime")}


def summarize(entry, system, workload):
    seconds = [r["workloads"][workload] for r in entry["runs"] if r["system"] == system]
    rates = [entry["texts"][workload] / s for s in seconds]
    return float(np.median(rates)), float(min(rates)), float(max(rates))


def table(report) -> str:
    lines = [f"Measured {report['date']} on {report['machine']}. GEMM alone, GFLOP/s (M x K x N), medians of "
             f"{len(next(iter(next(iter(report['gemm_gflops'].values())).values())))} rounds, each system in its own process, in turns:"]
    lines += [f"{shape}: {gemm_summary(per_round)};" for shape, per_round in report["gemm_gflops"].items()]
    lines += [""]
    for model, entry in report["models"].items():
        systems = list(dict.fromkeys(r["system"] for r in entry["runs"]))
        lines += [f"**{model}** (texts/s, median of {len(entry['runs']) // len(systems)} rounds [min..max]; real tokens/s)", "",
                  "| system | passages | queries | long | load s | first embedding s | cold start s | peak RSS MiB (passages), x weights file |",
                  "|---|---|---|---|---|---|---|---|"]
        for system in systems:
            cells = []
            for w in ("passages", "queries", "long"):
                med, lo, hi = summarize(entry, system, w)
                cells.append(f"{med:.2f} [{lo:.2f}..{hi:.2f}]; {med * entry['tokens'][w] / entry['texts'][w]:.0f} tok/s")
            runs = [r for r in entry["runs"] if r["system"] == system]
            rss = np.median([r["peak_rss_passages_mib"] for r in runs])
            lines.append(f"| {system} | " + " | ".join(cells) +
                         f" | {np.median([r['load_s'] for r in runs]):.2f} | {np.median([r['first_embedding_s'] for r in runs]):.2f}"
                         f" | {entry['cold_start_s'][system]:.2f} | {rss:.0f}, {rss / entry['weights_mib']:.2f}x |")
        lines += ["", f"e5np cold start with an empty Numba cache: {entry['cold_start_s']['e5np (empty Numba cache)']:.1f} s; "
                  f"weights file {entry['weights_mib']:.0f} MiB.", ""]
    return "\n".join(lines)


def chart(report, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = list(report["models"])
    fig, axes = plt.subplots(len(models), 3, figsize=(13, 3.6 * len(models)), squeeze=False)
    for row, model in enumerate(models):
        entry = report["models"][model]
        systems = list(dict.fromkeys(r["system"] for r in entry["runs"]))
        for col, w in enumerate(("passages", "queries", "long")):
            meds = [summarize(entry, s, w)[0] for s in systems]
            ax = axes[row][col]
            ax.barh(systems, meds, color=["tab:green" if s.startswith("e5np") else "tab:gray" for s in systems])
            ax.set_title(f"{model}: {w} (texts/s)")
            ax.invert_yaxis()
    fig.suptitle(f"e5np vs peers (fp32; bf16 and int8 rows marked), 2 cores, {report['date']}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
