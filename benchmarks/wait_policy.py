"""OpenMP's wait policy under e5np's thread choice (issue #20), run by hand on an idle machine.

  python benchmarks/wait_policy.py --busy 1 [--fixed]

Each run a fresh process (the policy is read when OpenMP starts), OMP_WAIT_POLICY unset (active
waiting) and PASSIVE in turns, 3 each; inside, 84 single-query encodes and one encode of 32
passages on all-MiniLM-L6-v2, medians of 6 after a warm-up. ``--fixed``: two fixed threads
(adapt_threads=False), the default before thread choice.
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

CHILD = """
import json, statistics, sys, time
sys.path[:0] = [{benchmarks!r}, {scripts!r}]
import make_fixtures
from contention import workloads
from e5np import E5Model
folder = make_fixtures.minilm()
work = workloads(folder)
queries, passages = [call[0] for call in work["queries"]], work["passages"][0]
model = E5Model(folder, max_length=512, adapt_threads={adapt})
for q in queries[:20]:
    model.encode([q])
model.encode(passages)
tq, tp = [], []
for _ in range(6):
    s = time.perf_counter(); [model.encode([q]) for q in queries]; tq.append(time.perf_counter() - s)
    s = time.perf_counter(); model.encode(passages); tp.append(time.perf_counter() - s)
print(json.dumps([statistics.median(tq), statistics.median(tp)]))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", type=int, default=0)
    parser.add_argument("--fixed", action="store_true")
    args = parser.parse_args()
    from e5np.runtime import cpuinfo

    code = CHILD.format(benchmarks=str(HERE), scripts=str(HERE.parent / "scripts"), adapt=not args.fixed)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    results = {"unset": [], "PASSIVE": []}
    try:
        for i in range(3):
            for policy in (("unset", "PASSIVE") if i % 2 == 0 else ("PASSIVE", "unset")):
                env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
                if policy == "PASSIVE":
                    env["OMP_WAIT_POLICY"] = "PASSIVE"
                done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
                results[policy].append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        for process in busy:
            process.kill()
    threads = "2 fixed threads" if args.fixed else "thread choice"
    print(f"{cpuinfo('model name')}, {time.strftime('%Y-%m-%d %H:%M')}, {args.busy} busy process(es), {threads}")
    for policy, runs in results.items():
        print(f"  OMP_WAIT_POLICY {policy}: 84 queries {statistics.median(r[0] for r in runs):.3f} s, "
              f"32 passages {statistics.median(r[1] for r in runs):.3f} s")


if __name__ == "__main__":
    main()
