"""Thread counts: the cgroup CPU quota read as Linux writes it, and the per-size choice between one
thread and all of them following the times it is given."""

import numpy as np
import pytest

from e5np import E5Model
from e5np.runtime import threads as threads_module
from e5np.runtime.threads import OtherLoad, ThreadChoice, cgroup_cpu_quota, usable_cpus


def write_tree(tmp_path, files: dict):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_cgroup_v2_quota_tightest_of_the_path(tmp_path):
    write_tree(tmp_path, {"proc": "0::/kubepods/pod1/c1\n", "fs/cpu.max": "max 100000\n",
                          "fs/kubepods/cpu.max": "300000 100000\n", "fs/kubepods/pod1/c1/cpu.max": "150000 100000\n"})
    assert cgroup_cpu_quota(str(tmp_path / "proc"), str(tmp_path / "fs")) == 1.5


def test_cgroup_v1_quota_and_none(tmp_path):
    write_tree(tmp_path, {"proc": "3:cpuset:/\n2:cpu,cpuacct:/docker/abc\n1:name=systemd:/\n",
                          "fs/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "50000\n",
                          "fs/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
                          "fs/cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "fs/cpu,cpuacct/cpu.cfs_period_us": "100000\n"})
    assert cgroup_cpu_quota(str(tmp_path / "proc"), str(tmp_path / "fs")) == 0.5
    write_tree(tmp_path, {"proc2": "0::/\n", "fs2/cpu.max": "max 100000\n"})
    assert cgroup_cpu_quota(str(tmp_path / "proc2"), str(tmp_path / "fs2")) is None
    assert cgroup_cpu_quota(str(tmp_path / "missing"), str(tmp_path / "fs")) is None


def test_usable_cpus_takes_the_quota_rounded_up(monkeypatch):
    import e5np.runtime.threads as threads
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: 1.5)
    assert usable_cpus() == (2, "cgroup CPU quota 1.5 CPUs (CPUs in the affinity mask: 4)")
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: None)
    assert usable_cpus()[0] == 4


class Load:
    """Other processes' busy cores, as the test sets them (``OtherLoad`` reads /proc/stat)."""

    def __init__(self, cores: float):
        self.cores = cores

    def update(self):
        pass


IDLE, BUSY = 0.0, 1.0
SOME = 0.6  # a neighbour keeping part of a core busy: both counts get trials (2 cores)


def run(choice: ThreadChoice, seconds_for, passes: int, tokens: int = 12) -> list[int]:
    picked = []
    for _ in range(passes):
        threads = choice.pick(tokens)
        choice.record(tokens, threads, seconds_for(threads))
        picked.append(threads)
    return picked


def test_choice_follows_the_times():
    load = Load(IDLE)
    choice = ThreadChoice(2, load, machine_cores=2)
    idle = {2: 0.006, 1: 0.010}
    picked = run(choice, idle.get, 400)
    assert picked == [2] * 400  # one thread is not tried while no other process is busy
    load.cores = BUSY  # another process takes a core
    busy = {2: 0.026, 1: 0.011}
    picked = run(choice, busy.get, 400)
    assert picked.index(1) <= 2 and picked[-390:].count(1) >= 380  # seen within a few passes
    load.cores = IDLE
    picked = run(choice, idle.get, 400)  # the core comes back: 2 threads again within ~1.2 s of passes
    assert picked[-250:].count(2) >= 240


def test_all_threads_are_not_tried_while_others_take_their_cores():
    """On one thread beside a busy process (2 cores, one taken), a trial of 2 threads would only
    cost: it waits until the others leave a core per thread, however slow one thread gets."""
    load = Load(BUSY)
    choice = ThreadChoice(2, load, machine_cores=2)
    busy = {2: 0.026, 1: 0.011}
    picked = run(choice, busy.get, 20)
    assert picked[-15:] == [1] * 15
    slowing = iter(0.011 * 1.01 ** i for i in range(1000))  # one thread gets slower and slower
    assert run(choice, lambda t: next(slowing) if t == 1 else 0.026, 400) == [1] * 400
    load.cores = 0.3  # the neighbour quietens: 2 threads get their trial
    assert 2 in run(choice, {2: 0.006, 1: 0.010}.get, 50)


def test_a_new_size_starts_where_the_load_points():
    """Beside a busy process a size never seen starts on one thread (its first pass is not spent
    on two); on an idle machine, on all of them."""
    load = Load(BUSY)
    choice = ThreadChoice(2, load, machine_cores=2)
    assert choice.pick(12) == 1 and choice.pick(3000) == 1
    load.cores = IDLE
    assert choice.pick(100) == 2


def test_choice_is_per_size():
    choice = ThreadChoice(2, Load(SOME), machine_cores=2)
    run(choice, {2: 0.026, 1: 0.011}.get, 50, tokens=12)
    run(choice, {2: 0.5, 1: 0.9}.get, 50, tokens=3000)
    assert choice.pick(12) == 1 and choice.pick(3000) == 2


def test_first_pass_compile_time_does_not_stick():
    choice = ThreadChoice(2, Load(SOME), machine_cores=2)
    first = iter([5.0])  # the first pass pays for compiling
    picked = run(choice, lambda t: next(first, 0.006 if t == 2 else 0.010), 300)
    assert picked[:6].count(1) <= 3 and picked[-290:].count(2) >= 275  # trials of 1 thread aside


def test_noisy_two_threads_lose_to_one_on_average():
    """Beside a busy process, 2 threads are sometimes fast and often a time slice late: their mean
    is what counts, not a lucky pass."""
    rng = np.random.default_rng(0)
    choice = ThreadChoice(2, Load(SOME), machine_cores=2)
    picked = run(choice, lambda t: 0.0065 if t == 1 else (0.004 if rng.random() < 0.6 else 0.025), 2000)
    assert picked[-1500:].count(1) >= 1400


def test_a_switch_in_one_size_prompts_the_others():
    """Queries notice a busy neighbour first; the long passes, tried rarely, follow at once."""
    load = Load(SOME)  # throughout: both sizes try one thread and find two faster
    choice = ThreadChoice(2, load, machine_cores=2)
    idle, busy = {2: 0.006, 1: 0.010}, {2: 0.026, 1: 0.011}
    for _ in range(30):  # both sizes settle on 2 threads
        run(choice, idle.get, 10, tokens=12)
        run(choice, lambda t: 40 * idle[t], 1, tokens=4000)
    run(choice, busy.get, 20, tokens=12)
    assert choice.pick(12) == 1 and choice.pick(4000) == 1


def test_other_load_counts_what_others_keep_busy(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    stat.write_text("cpu  1000 0 500 8000 100 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n")
    load = OtherLoad(str(stat))
    assert load.cores is None
    clock = iter([10.0, 10.5])  # the next sample, half a second on
    monkeypatch.setattr(threads_module.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(threads_module.time, "process_time", lambda: load._last[2] + 0.1)  # 0.1 s of our own CPU
    load._last = (9.8, load._last[1], load._last[2])
    stat.write_text(f"cpu  {1000 + load._tick} 0 500 8000 100 0 0 0 0 0\n")  # 1 s more busy time in all
    load.update()
    assert abs(load.cores - (1.0 - 0.1) / 0.7) < 1e-9  # 1 s busy, 0.1 s of it ours, over 0.7 s
    assert OtherLoad(str(tmp_path / "missing")).cores is None


def test_short_runs_pay_no_trial():
    choice = ThreadChoice(2, Load(IDLE), machine_cores=2)
    assert run(choice, {2: 0.5, 1: 0.9}.get, 8, tokens=2000) == [2] * 8


def test_one_thread_never_explores():
    assert run(ThreadChoice(1), lambda t: 1.0, 10) == [1] * 10


def test_num_threads_checked(minilm_folder):
    with pytest.raises(ValueError, match="num_threads must be at least 1"):
        E5Model(minilm_folder, num_threads=0)
    model = E5Model(minilm_folder)
    assert model.num_threads == usable_cpus()[0] and "adapt_threads=True" in repr(model)
    assert np.array_equal(model.encode(["x"]), E5Model(minilm_folder, adapt_threads=False).encode(["x"]))
