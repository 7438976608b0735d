"""Same-process A/B of e5np's thread choice (issue #20), run by hand on an otherwise idle machine.

  python benchmarks/threads_ab.py --busy 1 --against 1-thread     # beside one busy process
  python benchmarks/threads_ab.py --busy 0 --against 2-fixed      # idle: the default before

The default model and the other take turns (the order alternating) over 84 single-query encodes
and over one encode of 32 passages, 16 pairs each, after a warm-up; prints the median and
quartiles of default time / other time. No other system runs in the process (in contention.py,
torch's spinning threads after transformers' turn count as this process's own CPU time).
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", type=int, default=1, help="busy processes beside the run")
    parser.add_argument("--against", choices=["1-thread", "2-fixed"], default="1-thread")
    parser.add_argument("--pairs", type=int, default=16)
    args = parser.parse_args()

    import make_fixtures
    from contention import workloads

    from e5np import E5Model
    from e5np.runtime import cpuinfo

    folder = make_fixtures.minilm()
    work = workloads(folder)  # contention.py's: 84 single queries, passages in calls of 32
    queries, passages = [call[0] for call in work["queries"]], work["passages"][0]
    other = {"1-thread": {"num_threads": 1}, "2-fixed": {"num_threads": 2, "adapt_threads": False}}[args.against]
    models = {"default": E5Model(folder, max_length=512), args.against: E5Model(folder, max_length=512, **other)}
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    print(f"{cpuinfo('model name')}; all-MiniLM-L6-v2; {args.busy} busy process(es); {time.strftime('%Y-%m-%d %H:%M')}")
    try:
        for model in models.values():
            for query in queries[:20]:
                model.encode([query])
            model.encode(passages)
        for work, calls in (("84 queries", [[q] for q in queries]), ("32 passages", [passages])):
            ratios = []
            for i in range(args.pairs):
                seconds = {}
                for name in (list(models) if i % 2 else list(models)[::-1]):
                    start = time.perf_counter()
                    for texts in calls:
                        models[name].encode(texts)
                    seconds[name] = time.perf_counter() - start
                ratios.append(seconds["default"] / seconds[args.against])
            quartiles = ", ".join(f"{q:.3f}" for q in statistics.quantiles(ratios, n=4))
            print(f"{work}: default / {args.against} time, median {statistics.median(ratios):.3f} (quartiles {quartiles})")
    finally:
        for process in busy:
            process.kill()


if __name__ == "__main__":
    main()
