"""The server's embedding cache under repeated queries (issue #29), on and off, same run.

  python benchmarks/serve_cache.py [--model FOLDER] [--seconds 20] [--rounds 2] [--name serve-cache-zen4]

One query a request: half of them drawn Zipf-like (s = 1.1) from speed.py's 256 queries (the
popular searches), half never seen before (a numbered question each), so about half the
requests repeat an earlier query, as a search service's traffic does; the same request sequence
for both servers, long enough that no run wraps around it. Closed loop at concurrency 4 over loopback
(``serve_load.closed_loop``), servers taking turns each round: ``--cache-mb 64`` (the default)
against ``--cache-mb 0``. Writes benchmarks/results/<name>.json and .md.
"""

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))

from serve_load import closed_loop, start_server  # noqa: E402


def zipf_queries(folder: Path, count: int, seed: int = 0) -> list[list[str]]:
    """``count`` one-query requests: half popular (Zipf-like), half unique."""
    from workloads import make_workload
    popular = make_workload("queries", folder / "tokenizer.json")
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(popular) + 1) ** 1.1
    picks = rng.choice(len(popular), size=count, p=weights / weights.sum())
    fresh = rng.random(count) < 0.5
    return [[f"query: unique question number {i}" if fresh[i] else popular[p]] for i, p in enumerate(picks)]


def repeat_share(requests: list[list[str]]) -> float:
    """The share of requests whose query an earlier request sent."""
    seen, repeats = set(), 0
    for (text,) in requests:
        repeats += text in seen
        seen.add(text)
    return repeats / len(requests)


def main():
    import make_fixtures
    from e5np.runtime import cpu_name

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--name", default="serve-cache")
    args = parser.parse_args()
    folder = args.model or make_fixtures.minilm()
    requests = zipf_queries(folder, 100_000)
    runs = {"cache 64 MiB": [], "no cache": []}
    for r in range(args.rounds):
        order = list(runs) if r % 2 == 0 else list(runs)[::-1]
        for name in order:
            process, port = start_server(folder, 4096, "--cache-mb", "64" if name.startswith("cache") else "0")
            try:
                asyncio.run(closed_loop(port, [["query: warm up"]], 4, 2, None))
                runs[name].append(asyncio.run(closed_loop(port, requests, 4, args.seconds, None)))
            finally:
                process.terminate()
                process.wait(60)
    # over the requests the cached server's runs sent (each run starts at the sequence's beginning)
    sent = round(statistics.median(v["requests_per_s"] for v in runs["cache 64 MiB"]) * args.seconds)
    repeated = repeat_share(requests[:sent])
    result = {"cpu": cpu_name(), "date": time.strftime("%Y-%m-%d %H:%M"), "model": folder.name,
              "repeated_share": repeated, "runs": runs}
    (HERE / "results" / f"{args.name}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    md = [f"# Embedding cache on and off, {result['date']}, {result['cpu']}, 2 vCPUs", "",
          f"{folder.name}, one query a request, half popular queries drawn Zipf-like, half unique ({repeated:.0%} of requests repeat an earlier query), "
          f"closed loop at concurrency 4, {args.seconds:g} s a run, {args.rounds} interleaved rounds (medians).", "",
          "| server | requests/s | p50 ms | p99 ms |", "|---|---|---|---|"]
    for name, values in runs.items():
        med = {k: statistics.median(v[k] for v in values) for k in ("requests_per_s", "p50_ms", "p99_ms")}
        md.append(f"| {name} | {med['requests_per_s']:.0f} | {med['p50_ms']:.1f} | {med['p99_ms']:.1f} |")
    (HERE / "results" / f"{args.name}.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))


if __name__ == "__main__":
    main()
