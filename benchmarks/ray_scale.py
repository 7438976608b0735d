"""Ray's cost and scale for corpus embedding (issue #18), run by hand on an idle machine.

  python benchmarks/ray_scale.py [--passages 5183] [--name ray-scale]

On SciFact's corpus (../shared/data/scifact, read in place), all-MiniLM-L6-v2, Parquet shards of
250 rows (--shard-rows), each run a fresh process of the CLI, in turns: local `--format parquet` (1 process, 2
threads), `--ray local:2` with 2 actors x 1 thread and 1 actor x 2 threads; Ray's fixed cost (the
same on 20 passages); per-shard time inside the actors (manifest). Then the e5-large fixture's
rate per actor at 1 and 2 threads, fp32 and bf16 where the CPU has it (64 passages in-process),
for the projection. Writes benchmarks/results/<name>.json and .md.
"""

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts"))
import make_fixtures  # noqa: E402

SCIFACT = make_fixtures.SHARED / "data" / "scifact" / "corpus.jsonl"
RUNS = {"local, 1 process x 2 threads": ["--format", "parquet"],
        "Ray, 2 actors x 1 thread": ["--ray", "local:2", "--actors", "2", "--threads-per-actor", "1"],
        "Ray, 1 actor x 2 threads": ["--ray", "local:2", "--actors", "1", "--threads-per-actor", "2"]}


def run_cli(corpus: Path, out: Path, model: Path, extra: list[str], shard_rows: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "e5np.cli", "embed-corpus", str(corpus), "--output", str(out), "--model",
                    str(model), "--shard-size", str(shard_rows), "--quiet", *extra], check=True, capture_output=True)
    return time.perf_counter() - started


def actor_rates(folder: Path, texts: list[str]) -> dict:
    code = f"""
import json, sys, time
from e5np import E5Model
texts = json.loads(sys.stdin.read())
out = {{}}
for precision in ("fp32", "bf16"):
    for threads in (1, 2):
        m = E5Model({str(folder)!r}, num_threads=threads, precision=precision, adapt_threads=False)
        if precision == "bf16" and m.precision == "fp32":
            continue
        m.encode(texts[:8], prefix="passage: ")
        t = time.perf_counter(); m.encode(texts, prefix="passage: "); out[f"{{m.precision}}, {{threads}} thread(s)"] = len(texts) / (time.perf_counter() - t)
print(json.dumps(out))
"""
    result = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=5183)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-rates", action="store_true", help="skip the e5-large per-actor rates")
    parser.add_argument("--name", default="ray-scale")
    parser.add_argument("--shard-rows", type=int, default=250)
    args = parser.parse_args()
    minilm, large = make_fixtures.minilm(), make_fixtures.e5_large_random()
    lines = SCIFACT.read_text(encoding="utf-8").splitlines()
    work = Path(tempfile.mkdtemp())
    corpus, tiny = work / "corpus.jsonl", work / "tiny.jsonl"
    corpus.write_text("\n".join(lines[:args.passages]) + "\n", encoding="utf-8")
    tiny.write_text("\n".join(lines[:20]) + "\n", encoding="utf-8")

    times = {name: [] for name in RUNS}
    fixed = []
    for r in range(args.rounds):
        for name, extra in (list(RUNS.items()) if r % 2 == 0 else list(RUNS.items())[::-1]):
            times[name].append(run_cli(corpus, work / "out", minilm, extra, args.shard_rows))
            if name.startswith("Ray, 2"):
                manifest = json.loads((work / "out" / "manifest.json").read_text())
                per_shard = [s["seconds"] for s in manifest["shards"]]
        fixed.append(run_cli(tiny, work / "tiny-out", minilm, RUNS["Ray, 2 actors x 1 thread"], args.shard_rows))
    texts = [json.loads(line)["text"] for line in lines[:64]]
    rates = {} if args.no_rates else actor_rates(large, texts)
    from e5np.runtime import cpuinfo

    result = {"cpu": cpuinfo("model name") or platform.machine(),
              "date": time.strftime("%Y-%m-%d %H:%M"), "passages": args.passages, "shard_rows": args.shard_rows, "seconds": times,
              "ray_fixed_seconds": fixed, "per_shard_seconds_2x1": per_shard, "e5_large_rates": rates}
    (HERE / "results" / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    local = statistics.median(times["local, 1 process x 2 threads"])
    rows = [f"| {name} | {statistics.median(t):.1f} | {args.passages / statistics.median(t):.1f} | "
            f"{local / statistics.median(t):.2f}x |" for name, t in times.items()]
    md = [f"# Ray scale, {result['date']}, {result['cpu']}, 2 vCPUs", "",
          f"all-MiniLM-L6-v2, {args.passages} SciFact passages, shards of {args.shard_rows}, medians of {args.rounds} rounds "
          "(each a fresh CLI process, end to end: start, model load, Ray start, embedding, writing):", "",
          "| run | seconds | passages/s | vs local |", "|---|---|---|---|", *rows, "",
          f"Ray's fixed cost (20 passages, 2 actors): {statistics.median(fixed):.1f} s; per shard of {args.shard_rows} inside an "
          f"actor: median {statistics.median(per_shard):.1f} s.", "",
          "e5-large fixture, passages/s of one actor (64 SciFact passages, in-process): " +
          ", ".join(f"{k}: {v:.2f}" for k, v in rates.items())]
    (HERE / "results" / f"{args.name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
