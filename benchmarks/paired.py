"""Two systems back to back, in pairs, each in its own process: the median of the per-pair speed
ratios is steadier than separate medians on a machine whose speed drifts (run by hand).

  python benchmarks/paired.py [--pairs 6] [--workloads passages,long] [--systems A B]

Uses speed.py's worker; prints each pair and, per workload, the ratio A/B (A's texts/s over B's).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts"))


def main():
    import make_fixtures

    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--workloads", default="passages,long")
    parser.add_argument("--systems", nargs=2, default=["e5np-bf16", "transformers-bf16-sorted"])
    args = parser.parse_args()
    folder = make_fixtures.e5_large_random()
    seconds = {s: [] for s in args.systems}
    for i in range(args.pairs):
        for system in args.systems if i % 2 == 0 else args.systems[::-1]:  # alternate who goes first
            out = subprocess.run([sys.executable, str(HERE / "speed.py"), "--worker", system, "--folder", str(folder),
                                  "--workloads", args.workloads, "--started", repr(time.time())],
                                 capture_output=True, text=True, check=True)
            seconds[system].append(json.loads(out.stdout.strip().splitlines()[-1])["workloads"])
        print(i, {s: {w: round(t, 2) for w, t in seconds[s][-1].items()} for s in args.systems}, flush=True)
    a, b = args.systems
    for w in args.workloads.split(","):
        ratios = [seconds[b][i][w] / seconds[a][i][w] for i in range(args.pairs)]
        print(f"{w}: {a} / {b} speed, per pair {[round(r, 3) for r in ratios]}, median {np.median(ratios):.3f}")


if __name__ == "__main__":
    main()
