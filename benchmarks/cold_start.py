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
started = float(sys.argv[3])
compiles = {}
if sys.argv[1].startswith("e5np"):
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
if sys.argv[1].startswith("e5np"):
    from e5np import E5Model
    t1 = time.time()
    model = E5Model(sys.argv[2], precision="bf16" if sys.argv[1] == "e5np-bf16" else "fp32")
    t2 = time.time()
    model.encode(texts)
else:
    import torch, torch.nn.functional as F
    from transformers import AutoModel, AutoTokenizer
    torch.set_num_threads(2)
    t1 = time.time()
    tokenizer, hf = AutoTokenizer.from_pretrained(sys.argv[2]), AutoModel.from_pretrained(sys.argv[2]).eval()
    t2 = time.time()
    with torch.inference_mode():
        batch = tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
        h = hf(**batch).last_hidden_state
        mask = batch["attention_mask"][..., None]
        F.normalize((h * mask).sum(1) / mask.sum(1), dim=-1)
t3 = time.time()
print(json.dumps({"start_to_import": t0 - started, "import": t1 - t0, "load": t2 - t1, "first_encode": t3 - t2,
                  "total": t3 - started, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "compile_s": compiles}))
"""


def run(system: str, folder: Path, cache: str) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    out = subprocess.run([sys.executable, "-c", WORKER, system, str(folder), repr(time.time()), json.dumps(TEXTS)],
                         capture_output=True, text=True, env=env, timeout=900)
    if out.returncode:
        raise RuntimeError(f"{system}: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    import make_fixtures
    from e5np.runtime import cpu_name

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--name", default="cold-start")
    args = parser.parse_args()
    models = {"all-MiniLM-L6-v2": make_fixtures.minilm(), "e5-large-random": make_fixtures.e5_large_random()}
    warm_cache = tempfile.mkdtemp(prefix="e5np-warm-")
    for model in models.values():  # fill the warm cache once
        for system in ("e5np", "e5np-bf16"):
            run(system, model, warm_cache)
    runs = {}
    for r in range(args.rounds):
        for name, folder in models.items():
            cases = [("e5np", "fresh"), ("e5np", "warm"), ("e5np-bf16", "fresh"), ("e5np-bf16", "warm"),
                     ("transformers", "warm")]
            for system, start in (cases if r % 2 == 0 else cases[::-1]):
                if name != "all-MiniLM-L6-v2" and start == "fresh":
                    continue  # the kernels are the same as MiniLM's: a fresh compile costs the same
                cache = tempfile.mkdtemp(prefix="e5np-fresh-") if start == "fresh" else warm_cache
                runs.setdefault(f"{name}|{system}|{start}", []).append(run(system, folder, cache))
    result = {"cpu": cpu_name(), "date": time.strftime("%Y-%m-%d %H:%M"), "texts": TEXTS, "runs": runs}
    (HERE / "results" / f"{args.name}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    md = [f"# Process start to first embedding, {result['date']}, {result['cpu']}, 2 vCPUs", "",
          f"Medians of {args.rounds} rounds, seconds; fresh: empty Numba cache; warm: cache filled.", "",
          "| model | system | start | total | import | load | first encode | peak RSS MiB |", "|---|---|---|---|---|---|---|---|"]
    for key, values in runs.items():
        model, system, start = key.split("|")
        med = {k: statistics.median(v[k] for v in values) for k in ("total", "import", "load", "first_encode", "peak_rss_mib")}
        md.append(f"| {model} | {system} | {start} | {med['total']:.1f} | {med['import']:.1f} | {med['load']:.1f} | "
                  f"{med['first_encode']:.1f} | {med['peak_rss_mib']:.0f} |")
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
