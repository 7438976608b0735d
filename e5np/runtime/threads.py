"""How many threads a forward pass runs on.

Two questions, two answers:
- **How many CPUs does this process really have?** The smaller of its affinity mask and its cgroup
  CPU quota (a container given ``cpu.max`` 100000/100000 sees every core of the node but gets one
  core's time): ``usable_cpus``.
- **Does this pass gain from them right now?** Every parallel loop of a layer ends at a barrier, and
  a thread the OS has put aside (another busy process, the server's own event loop) holds the others
  there for a time slice: with one other busy process on 2 vCPUs, 84 single-text encodes on 2
  threads took 2.1x as long as on one. ``ThreadChoice`` times each forward pass and keeps, per
  size of pass, what one thread and what all of them took per token; each pass runs on the faster,
  and the slower gets a short trial now and then (spaced so that trials cost a few percent of the
  time), or at once when the one running gets slower than the other was last seen: a change in the
  machine's load is seen within a few passes.

The thread count never changes an embedding: every kernel is bit-identical on any number of threads.
"""

import math
import os
import time
from pathlib import Path

from .portable import affinity_cpus

TRIAL_PASSES, TRIAL_SECONDS = 3, 0.05  # a trial of the other count: 3 passes, or fewer that took 50 ms
FIRST_TRIAL_AFTER = 1                  # passes' time before the first trial
OTHERS_BUSY = 0.5                      # cores taken by other processes before one thread is worth a trial
CORE_TAKEN = 0.8                       # others keeping a core this busy take it: all threads are not tried
LOAD_WINDOW = 0.1                      # seconds over which that is measured (/proc/stat counts in 10 ms ticks)
EXPLORE_EVERY = 50                     # then 50x the time it lost (at least its own time) before the next
SLOWDOWN = 1.5                         # the running count this much slower than its best: try the other now
SMOOTHING = 0.3                        # weight of the newest pass in the running count's estimate


def usable_cpus() -> tuple[int, str]:
    """(CPUs, why): the affinity mask (elsewhere than Linux: the CPUs the OS gives this process),
    capped by the cgroup CPU quota rounded up."""
    affinity, source = affinity_cpus()
    quota = cgroup_cpu_quota()
    if quota is not None and math.ceil(quota) < affinity:
        return math.ceil(quota), f"cgroup CPU quota {quota:g} CPUs ({source}: {affinity})"
    return affinity, f"{affinity} {source}" + (f" (cgroup quota {quota:g})" if quota else "")


def cgroup_cpu_quota(proc_cgroup: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup") -> float | None:
    """This process's CPU quota in CPUs (the tightest of its cgroup and their parents), or None
    where none is set. cgroup v2: ``cpu.max`` ("quota period" or "max period"); v1: the cpu
    controller's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1: none)."""
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2
            quotas += _quotas_up(Path(root), path, _v2_quota)
        elif "cpu" in controllers.split(","):  # v1
            quotas += _quotas_up(Path(root) / controllers, path, _v1_quota)
    quotas = [q for q in quotas if q is not None]
    return min(quotas) if quotas else None


def _quotas_up(mount: Path, path: str, read):
    parts = [p for p in path.split("/") if p]
    for depth in range(len(parts), -1, -1):
        yield read(mount.joinpath(*parts[:depth]))


def _v2_quota(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _v1_quota(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 else quota / period


class SizeClass:
    """Passes of 2^k to 2^(k+1) tokens: seconds per token of each thread count, the one running,
    and the trial of the other under way or the time until the next one."""
    __slots__ = ("estimate", "best", "current", "trial", "trial_passes", "trial_seconds", "until_trial")

    def __init__(self, threads: int, start: int):
        self.estimate = {threads: None, 1: None}
        self.best = {threads: float("inf"), 1: float("inf")}
        self.current, self.trial, self.until_trial = start, None, None  # None: set by the first pass
        self.trial_passes, self.trial_seconds = 0, 0.0


class OtherLoad:
    """How many cores other processes kept busy lately: the machine's busy time (/proc/stat) minus
    this process's own CPU time, over windows of at least ``LOAD_WINDOW`` seconds. None where
    /proc/stat cannot be read."""

    def __init__(self, stat: str = "/proc/stat"):
        self._stat, self.cores = stat, None
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last = self._sample()

    def _sample(self):
        try:
            with open(self._stat) as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # all but idle and iowait
        return time.perf_counter(), busy / self._tick, time.process_time()

    def update(self) -> None:
        if self._last is None or time.perf_counter() - self._last[0] < LOAD_WINDOW:
            return
        now = self._sample()
        if now is None:
            return
        wall, busy, own = (b - a for a, b in zip(self._last, now))
        self.cores, self._last = max(busy - own, 0.0) / wall, now


class ThreadChoice:
    """``threads = choice.pick(tokens)``, run the pass, ``choice.record(tokens, threads, seconds)``.

    Per size class: the running count's time per token is smoothed over its passes; now and then
    the other count gets a trial (a few passes; their mean is its estimate) and takes over if it
    was faster. One thread gets a trial only while other processes keep at least ``OTHERS_BUSY``
    cores busy (``OtherLoad``): on an idle machine it only costs; all threads only while the others
    leave a core for each (``CORE_TAKEN``). Trials are spaced by what the last one cost (``EXPLORE_EVERY`` x the time it lost),
    so they take a few percent at most whatever the pass size; a running count that gets slower
    than the other's estimate, or ``SLOWDOWN`` x slower than its own best, starts a trial at once,
    and so does a switch in another size (the frequent small passes notice a change first)."""

    def __init__(self, threads: int, load: OtherLoad | None = None, machine_cores: int | None = None):
        self.threads, self.machine_cores = threads, machine_cores or os.cpu_count() or threads
        self._sizes: dict[int, SizeClass] = {}
        self._first = True  # the process's first pass pays for loading machine code: not a measurement
        self._load = load if load is not None else (OtherLoad() if threads > 1 else None)

    def pick(self, tokens: int) -> int:
        if self.threads == 1:
            return 1
        size = self._size(tokens)
        if size.trial is None and size.until_trial is not None and size.until_trial <= 0 and self._worth_trying(size):
            size.trial, size.trial_passes, size.trial_seconds = self._other(size.current), 0, 0.0
        return size.trial or size.current

    def _worth_trying(self, size: SizeClass) -> bool:
        """One thread only gains where another process takes a core: on an idle machine all of them
        measured 1.6 to 2x as fast, so a trial of one thread there would only cost. All threads
        only gain where the others leave a core for each: beside one busy process on 2 cores they
        measured 1.1 to 2.9x slower than one, so a trial there would only cost (the machine's
        cores, as /proc/stat counts them, not this process's share)."""
        if size.current == 1:
            return self._cores_for_all()
        others = self._others()  # None where /proc/stat cannot be read (macOS, Windows): never worth it
        return others is not None and others >= OTHERS_BUSY

    def _others(self) -> float | None:
        if self._load is None:
            return None
        self._load.update()
        return self._load.cores

    def _cores_for_all(self) -> bool:
        """Do other processes leave a core for each of the threads (or is their load unknown)?"""
        others = self._others()
        return others is None or self.machine_cores - math.floor(others + 1 - CORE_TAKEN) >= self.threads

    def record(self, tokens: int, threads: int, seconds: float) -> None:
        if self.threads == 1 or self._first:
            self._first = False
            return
        size, per_token = self._size(tokens), seconds / max(tokens, 1)
        if threads == size.trial:
            size.trial_passes += 1
            size.trial_seconds += seconds
            previous = size.estimate[threads] if size.trial_passes > 1 else None
            size.estimate[threads] = per_token if previous is None else previous + (per_token - previous) / size.trial_passes
            if size.trial_passes >= TRIAL_PASSES or size.trial_seconds >= TRIAL_SECONDS:
                self._end_trial(size)
            return
        old = size.estimate[threads]
        size.estimate[threads] = estimate = per_token if old is None else old + SMOOTHING * (per_token - old)
        size.best[threads] = min(size.best[threads], estimate)
        if size.until_trial is None:
            size.until_trial = FIRST_TRIAL_AFTER * seconds
        size.until_trial -= seconds
        other = size.estimate[self._other(threads)]
        if (other is not None and estimate > other) or estimate > SLOWDOWN * size.best[threads]:
            size.until_trial = 0.0  # slower than the other was, or than itself was: the load changed, try now

    def _end_trial(self, size: SizeClass) -> None:
        tried, running = size.estimate[size.trial], size.estimate[size.current]
        lost = size.trial_seconds * max(1 - running / tried, 0) if running is not None else 0.0
        if running is None or tried < running:
            if running is not None:  # the load changed: the other sizes, still on the old count, try the new one next
                for other in self._sizes.values():
                    if other is not size and other.current == size.current and other.trial is None:
                        other.until_trial = 0.0
            size.current = size.trial
        size.until_trial = EXPLORE_EVERY * max(lost, size.trial_seconds / EXPLORE_EVERY)
        size.trial = None
        size.best[size.current] = size.estimate[size.current]  # its best under the load as it is now

    def _size(self, tokens: int) -> SizeClass:
        k = max(tokens, 1).bit_length()
        if k not in self._sizes:  # a size not seen yet starts where the load points
            self._sizes[k] = SizeClass(self.threads, self.threads if self._cores_for_all() else 1)
        return self._sizes[k]

    def _other(self, threads: int) -> int:
        return 1 if threads != 1 else self.threads

    def timed(self, tokens: int):
        """Context manager form: ``with choice.timed(tokens) as threads: ...``."""
        return _Timed(self, tokens)


class _Timed:
    def __init__(self, choice: ThreadChoice, tokens: int):
        self.choice, self.tokens = choice, tokens

    def __enter__(self) -> int:
        self.threads = self.choice.pick(self.tokens)
        self.start = time.perf_counter()
        return self.threads

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.choice.record(self.tokens, self.threads, time.perf_counter() - self.start)
