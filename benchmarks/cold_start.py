"""Process start to first embedding (issue #27): e5np with empty caches and warm, beside transformers.

  python benchmarks/cold_start.py [--rounds 2] [--name cold-start-zen4]

Each run is a new process: import, model load, then the first ``encode`` of two texts (a short
one and a longer one, so the longer pass's specializations count too), timed inside the process
from its start (``time.time()`` passed in by the driver). "fresh": an empty ``NUMBA_CACHE_DIR``
(a fresh install, an upgrade, another CPU); "warm": the cache filled by an earlier run. Per-kernel
compile seconds come from Numba's "numba:compile" events in the fresh runs. Systems take turns
in every round. Writes benchmarks/results/<name>.json and .md.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts"))

TEXTS = ["query: how much protein should a female eat",
         "passage: " + "As a general guideline, the CDC's average requirement of protein for women is 46 grams. " * 6]

WORKER = r"""
import json, resource, sys, time
started, system = float(sys.argv[3]), sys.argv[1]
compiles = {}
if system.startswith("e5np"):
    from numba.core import event

    class Timer(event.Listener):
        def on_start(self, ev):
            self.t = time.perf_counter()
        def on_end(self, ev):
            d = ev.data["dispatcher"]
            name = f"{d.py_func.__module__.removeprefix('e5np.kernels.')}.{d.py_func.__name__}"
            compiles[name] = compiles.get(name, 0.0) + time.perf_counter() - self.t
    event.register("numba:compile", Timer())
t0 = time.time()
texts = json.loads(sys.argv[4])
if system.startswith("e5np"):
    from e5np import E5Model
    t1 = time.time()
    model = E5Model(sys.argv[2], precision="bf16" if system == "e5np-bf16" else "fp32")
    encode = model.encode
else:  # the speed benchmark's peers: imports (torch, ONNX Runtime) happen in load_system
    sys.path.insert(0, sys.argv[5])
    from peers import load_system
    t1 = time.time()
    encode = load_system(system, sys.argv[2])
t2 = time.time()
encode(texts)
t3 = time.time()
print(json.dumps({"start_to_import": t0 - started, "import": t1 - t0, "load": t2 - t1, "first_encode": t3 - t2,
                  "total": t3 - started, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "compile_s": compiles}), flush=True)
if len(sys.argv) > 6:  # hold: report this process's memory, then wait until the driver closes stdin
    rollup = {}
    for line in open("/proc/self/smaps_rollup"):
        parts = line.split()
        if len(parts) == 3 and parts[2] == "kB":
            rollup[parts[0].rstrip(":")] = int(parts[1]) / 1024
    print(json.dumps(rollup), flush=True)
    sys.stdin.read()
"""
PEERS = ["transformers", "sentence-transformers", "onnxruntime"]


def run(system: str, folder: Path, cache: str) -> dict:
    out = subprocess.run(_command(system, folder), capture_output=True, text=True, env=_env(cache), timeout=900)
    if out.returncode:
        raise RuntimeError(f"{system}: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _command(system, folder, hold=False):
    return [sys.executable, "-c", WORKER, system, str(folder), repr(time.time()), json.dumps(TEXTS), str(HERE)] + (
        ["hold"] if hold else [])


def _env(cache: str) -> dict:
    """Every e5np cache (kernels, packed weights) under ``cache``."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    return {**env, "E5NP_CACHE_DIR": cache}


def second_process_memory(folder: Path, cache: str) -> dict:
    """Two warm e5np processes on the same model at once: the second one's memory (smaps_rollup,
    MiB). Its packed weights are the first one's page-cache pages: shared, not private."""
    first = subprocess.Popen(_command("e5np", folder, hold=True), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env=_env(cache))
    first.stdout.readline(), first.stdout.readline()
    second = subprocess.Popen(_command("e5np", folder, hold=True), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=_env(cache))
    second.stdout.readline()
    rollup = json.loads(second.stdout.readline())
    for p in (first, second):
        p.stdin.close()
        p.wait(timeout=60)
    return {k: rollup[k] for k in ("Rss", "Pss", "Shared_Clean", "Private_Clean", "Private_Dirty", "Anonymous")}


def main():
    import make_fixtures
    from e5np.runtime import cpu_name

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--name", default="cold-start")
    args = parser.parse_args()
    models = {"all-MiniLM-L6-v2": make_fixtures.minilm(), "e5-large-random": make_fixtures.e5_large_random()}
    warm_cache = tempfile.mkdtemp(prefix="e5np-warm-")
    for model in models.values():  # fill the warm caches once (and export the ONNX models)
        for system in ("e5np", "e5np-bf16", *PEERS):
            run(system, model, warm_cache)
    runs = {}
    for r in range(args.rounds):
        for name, folder in models.items():
            cases = [("e5np", "fresh"), ("e5np", "warm"), ("e5np-bf16", "fresh"), ("e5np-bf16", "warm")]
            cases += [(peer, "warm") for peer in PEERS]
            for system, start in (cases if r % 2 == 0 else cases[::-1]):
                if name != "all-MiniLM-L6-v2" and system == "e5np-bf16" and start == "fresh":
                    continue  # the same kernels as MiniLM's; e5np fp32 fresh shows the first packing
                cache = tempfile.mkdtemp(prefix="e5np-fresh-") if start == "fresh" else warm_cache
                runs.setdefault(f"{name}|{system}|{start}", []).append(run(system, folder, cache))
    shared = second_process_memory(models["e5-large-random"], warm_cache)
    result = {"cpu": cpu_name(), "date": time.strftime("%Y-%m-%d %H:%M"), "texts": TEXTS, "runs": runs,
              "second_process_mib": shared}
    (HERE / "results" / f"{args.name}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    md = [f"# Process start to first embedding, {result['date']}, {result['cpu']}, 2 vCPUs", "",
          f"Medians of {args.rounds} rounds, seconds; fresh: empty caches (no compiled kernels, no packed weights: "
          "a fresh install); warm: both filled (`e5np warmup`, or any earlier run). Peers warm: their files in the "
          "page cache, the ONNX model exported before.", "",
          "| model | system | start | total | import | load | first encode | peak RSS MiB |", "|---|---|---|---|---|---|---|---|"]
    for key, values in runs.items():
        model, system, start = key.split("|")
        med = {k: statistics.median(v[k] for v in values) for k in ("total", "import", "load", "first_encode", "peak_rss_mib")}
        md.append(f"| {model} | {system} | {start} | {med['total']:.1f} | {med['import']:.1f} | {med['load']:.1f} | "
                  f"{med['first_encode']:.1f} | {med['peak_rss_mib']:.0f} |")
    md += ["", "A second warm e5np process on e5-large-random while a first one holds it (MiB, /proc/PID/smaps_rollup): "
           + ", ".join(f"{k} {v:.0f}" for k, v in shared.items())
           + ". The packed weights are mapped from the cache file: page-cache pages shared by both."]
    for system in ("e5np", "e5np-bf16"):
        fresh = runs.get(f"all-MiniLM-L6-v2|{system}|fresh", [])
        if fresh:
            seconds = {k: statistics.median(r["compile_s"].get(k, 0.0) for r in fresh) for k in fresh[0]["compile_s"]}
            top = sorted(seconds.items(), key=lambda kv: -kv[1])
            md += ["", f"Compile seconds per kernel, {system}, fresh (Numba's compile events, nested compiles "
                   f"counted in each; {len(top)} kernels, sum {sum(seconds.values()):.1f} s):", "",
                   "| kernel | seconds |", "|---|---|"] + [f"| {k} | {v:.1f} |" for k, v in top[:12]]
    (HERE / "results" / f"{args.name}.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))


if __name__ == "__main__":
    main()
