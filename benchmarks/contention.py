"""Speed when the cores are shared (issue #20): e5np's default against one thread, two fixed threads
(the default before thread choice), and transformers, on an idle machine, beside 1 and 2 busy
processes, and in a cgroup with a 1-CPU quota.

  python benchmarks/contention.py [--model FOLDER] [--rounds 6] [--out benchmarks/results/contention]

Each condition runs in a fresh worker process (so a quota applies from its start); inside it the
systems take turns in random order, round by round, and the table gives medians of the rounds.
Workloads (all-MiniLM-L6-v2 by default, max_length 512): 84 single-query encodes, 2 encodes of
32 passages, 2 encodes of one 512-token text.
"""

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))

SYSTEMS = ["e5np", "e5np-1-thread", "e5np-2-threads-fixed", "transformers"]
CONDITIONS = ["idle", "1 busy process", "2 busy processes", "1-CPU cgroup quota"]
BUSY = "while True: pass"


def workloads(folder: Path) -> dict:
    from workloads import make_workload
    tokenizer = folder / "tokenizer.json"
    queries = make_workload("queries", tokenizer)[:84]
    passages = make_workload("passages", tokenizer)[:64]
    long = make_workload("long", tokenizer)[:2]
    return {"queries": [[q] for q in queries], "passages": [passages[:32], passages[32:]], "long": [[t] for t in long]}


def load(name: str, folder: Path):
    if name.startswith("e5np"):
        from e5np import E5Model
        options = {"e5np": {}, "e5np-1-thread": {"num_threads": 1},
                   "e5np-2-threads-fixed": {"num_threads": 2, "adapt_threads": False}}[name]
        model = E5Model(folder, max_length=512, **options)
        return (lambda texts: model.encode(texts)), model.num_threads
    from peers import load_system
    import torch
    return load_system("transformers", str(folder)), torch.get_num_threads()


def worker(folder: Path, rounds: int) -> dict:
    work = workloads(folder)
    systems = {name: load(name, folder) for name in SYSTEMS}
    times = {name: {w: [] for w in work} for name in SYSTEMS}
    for round_ in range(rounds + 1):  # round 0 warms up (compiles, fills caches) and is not counted
        order = SYSTEMS[:]
        random.Random(round_).shuffle(order)
        for name in order:
            encode = systems[name][0]
            for w, calls in work.items():
                start = time.perf_counter()
                for texts in calls:
                    encode(texts)
                if round_:
                    times[name][w].append(time.perf_counter() - start)
    return {"threads": {name: systems[name][1] for name in SYSTEMS},
            "seconds": {name: {w: statistics.median(t) for w, t in ws.items()} for name, ws in times.items()},
            "rounds": {name: ws for name, ws in times.items()}}


def quota_cgroup() -> tuple[str, str] | None:
    """A cgroup with a 1-CPU quota (v2 cpu.max, else v1 cfs), as (folder, procs file); None if not allowed."""
    for folder, files in (("/sys/fs/cgroup/e5np-bench", {"cpu.max": "100000 100000"}),
                          ("/sys/fs/cgroup/cpu/e5np-bench", {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "100000"})):
        parent = os.path.dirname(folder)
        if not os.path.exists(os.path.join(parent, next(iter(files)))) and not os.path.exists(
                os.path.join(parent, "cgroup.procs")):
            continue
        try:
            os.makedirs(folder, exist_ok=True)
            for name, value in files.items():
                Path(folder, name).write_text(value)
            return folder, os.path.join(folder, "cgroup.procs")
        except OSError:
            continue
    return None


def run_condition(condition: str, folder: Path, rounds: int) -> dict | None:
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(condition.count("busy") and int(condition[0]))]
    preexec = None
    if "quota" in condition:
        cgroup = quota_cgroup()
        if cgroup is None:
            print(f"{condition}: cannot make a cgroup here; skipped", file=sys.stderr)
            return None
        preexec = lambda: Path(cgroup[1]).write_text(str(os.getpid()))  # noqa: E731
    try:
        done = subprocess.run([sys.executable, __file__, "--worker", "--model", str(folder), "--rounds", str(rounds)],
                              capture_output=True, text=True, preexec_fn=preexec, check=True)
    finally:
        for process in busy:
            process.kill()
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: dict) -> str:
    from e5np.runtime import cpuinfo
    lines = [f"CPU: {cpuinfo('model name')}, {os.cpu_count()} vCPUs; model {results['model']}; "
             f"medians of {results['rounds']} rounds, seconds; {results['date']}", "",
             "| condition | workload | " + " | ".join(SYSTEMS) + " | default / 1 thread | default / 2 fixed |",
             "|---|---|" + "---|" * (len(SYSTEMS) + 2)]
    for condition, r in results["conditions"].items():
        for w in ("queries", "passages", "long"):
            s = r["seconds"]
            cells = " | ".join(f"{s[name][w]:.3f}" for name in SYSTEMS)
            lines.append(f"| {condition} (threads {r['threads']['e5np']}) | {w} | {cells} | "
                         f"{s['e5np'][w] / s['e5np-1-thread'][w]:.2f}x | {s['e5np'][w] / s['e5np-2-threads-fixed'][w]:.2f}x |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--conditions", nargs="*", default=CONDITIONS)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "contention")
    parser.add_argument("--worker", action="store_true")
    args = parser.parse_args()
    if args.model is None:
        import make_fixtures
        args.model = make_fixtures.minilm()
    if args.worker:
        print(json.dumps(worker(args.model, args.rounds)))
        return
    results = {"model": args.model.name, "rounds": args.rounds, "date": time.strftime("%Y-%m-%d %H:%M"),
               "machine": platform.processor(), "conditions": {}}
    for condition in args.conditions:
        print(f"{condition} ...", file=sys.stderr, flush=True)
        r = run_condition(condition, args.model, args.rounds)
        if r is not None:
            results["conditions"][condition] = r
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    args.out.with_suffix(".md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
