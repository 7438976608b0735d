"""Every entry point on a simulated macOS and Windows (issue #26): the Linux-only calls taken away
(``simulated_platform/sitecustomize.py``: no sched_getaffinity or preadv, /proc and /sys
unreadable, and on Windows no pread and no fcntl), in a subprocess each. The embeddings must be
the very bytes a Linux run gives."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from e5np import E5Model

SIMULATION = Path(__file__).resolve().parent / "simulated_platform"
TEXTS = ["query: how much protein should a female eat", "passage: Ångström and 東京"]
SYSTEMS = ["macos", "windows"]


def simulated_env(system: str) -> dict:
    return {**os.environ, "E5NP_SIMULATE": system,
            "PYTHONPATH": os.pathsep.join([str(SIMULATION), os.environ.get("PYTHONPATH", "")])}


def simulated(system: str, *args, timeout=300, **kwargs):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=simulated_env(system),
                          timeout=timeout, **kwargs)


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_simulation_takes_the_linux_calls_away(system):
    code = ("import os, importlib.util\n"
            "from e5np.runtime import cpu\n"
            "print(hasattr(os, 'sched_getaffinity'), hasattr(os, 'preadv'), hasattr(os, 'pread'), "
            "cpu.cpuinfo('flags') is None)\n"
            "try:\n    import fcntl; print('fcntl')\nexcept ImportError:\n    print('no fcntl')\n")
    run = simulated(system, "-c", code)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.split("\n")
    assert lines[0] == f"False False {system == 'macos'} True" and lines[1] == ("no fcntl" if system == "windows" else "fcntl")


@pytest.mark.parametrize("system", SYSTEMS)
def test_info_names_the_cpu_and_its_paths(system):
    run = simulated(system, "-m", "e5np.cli", "info")
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-2000:]
    native = subprocess.run([sys.executable, "-m", "e5np.cli", "info"], capture_output=True, text=True, check=True).stdout
    def line(out, start):
        return next(text for text in out.splitlines() if text.startswith(start))

    assert line(run.stdout, "cpu flags").split(" (from")[0] == line(native, "cpu flags").split(" (from")[0]
    assert "(from LLVM's host features)" in run.stdout  # the same answer as /proc's, from LLVM
    assert line(run.stdout, "cpu: ").endswith(f"(LLVM's name; {os.uname().machine})")
    assert line(run.stdout, "kernels compiled for") == line(native, "kernels compiled for")
    assert f"threads: {len(os.sched_getaffinity(0))} by default ({len(os.sched_getaffinity(0))} CPUs this process may use)" \
        in run.stdout or "CPUs of the machine" in run.stdout
    assert "precision 'auto' ->" in run.stdout


@pytest.mark.parametrize("system", SYSTEMS)
def test_embed_reads_word_rows_without_preadv_and_gives_linux_bytes(system, minilm_folder, tmp_path):
    code = ("import sys, numpy as np\nfrom e5np.engine import word_rows\nword_rows.READ_FROM_FILE_ABOVE = 0\n"
            "from e5np import E5Model\nm = E5Model(sys.argv[1])\nassert m.weights.embeddings.word.reads_from_file\n"
            "np.save(sys.argv[2], m.encode(sys.argv[3:]))\n")
    out = tmp_path / "vectors.npy"
    run = simulated(system, "-c", code, str(minilm_folder), str(out), *TEXTS)
    assert run.returncode == 0, run.stderr[-3000:]
    assert np.array_equal(np.load(out), E5Model(minilm_folder).encode(TEXTS))


@pytest.mark.parametrize("system", SYSTEMS)
def test_cli_commands_run(system, minilm_folder, tmp_path):
    run = simulated(system, "-m", "e5np.cli", "embed", *TEXTS, "--model", str(minilm_folder))
    assert run.returncode == 0, run.stderr[-2000:]
    printed = np.array([json.loads(line) for line in run.stdout.splitlines()], np.float32)
    assert np.array_equal(printed, E5Model(minilm_folder).encode(TEXTS))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": str(i), "text": t}) + "\n" for i, t in enumerate(TEXTS * 3)),
                      encoding="utf-8")
    run = simulated(system, "-m", "e5np.cli", "embed-corpus", str(corpus), "--output", str(tmp_path / "out"),
                    "--model", str(minilm_folder), "--shard-size", "2")
    assert run.returncode == 0, run.stderr[-2000:]
    again = simulated(system, "-m", "e5np.cli", "embed-corpus", str(corpus), "--output", str(tmp_path / "out"),
                      "--model", str(minilm_folder), "--shard-size", "2")  # a finished run, read back and resumed
    assert again.returncode == 0, again.stderr[-2000:]
    sts = tmp_path / "sts.tsv"
    sts.write_text("score\tsentence1\tsentence2\n5.0\ta cat\ta cat\n1.0\ta cat\tthe stock market\n3.0\ta dog\ta cat\n",
                   encoding="utf-8")
    run = simulated(system, "-m", "e5np.cli", "evaluate-sts", str(sts), "--model", str(minilm_folder), "--json")
    assert run.returncode == 0 and json.loads(run.stdout)["pairs"] == 3, run.stderr[-2000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("system", SYSTEMS)
def test_serve_answers_and_stops_on_ctrl_c(system, minilm_folder):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "e5np.cli", "serve", "--model", str(minilm_folder),
                               "--port", str(port)], env=simulated_env(system), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        body = json.dumps({"inputs": TEXTS}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/embed", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            vectors = np.array(json.loads(reply.read()), np.float32)
        assert np.array_equal(vectors, E5Model(minilm_folder).encode(TEXTS))
        server.send_signal(signal.SIGINT)  # Ctrl-C: the one stop signal every system delivers
        assert server.wait(timeout=60) == 0, server.stderr.read()[-2000:]
    finally:
        if server.poll() is None:
            server.kill()


def test_node_copy_without_fcntl_two_actors_at_once(tmp_path, monkeypatch):
    """Windows has no fcntl: the node-local model copy is written to a folder of its own, then
    renamed; of two actors racing, one rename wins and the other discards its copy."""
    import threading

    from e5np.distributed import node_copies

    files = {"config.json": b'{"a": 1}', "model.safetensors": b"\0" * 1000}
    hashes = {name: __import__("hashlib").sha256(data).hexdigest() for name, data in files.items()}
    monkeypatch.setenv(node_copies.CACHE_VARIABLE, str(tmp_path))
    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(get=lambda ref: ref))
    monkeypatch.setitem(sys.modules, "fcntl", None)
    results, errors = [], []

    def actor():
        try:
            results.append(node_copies._node_copy(hashes, files))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=actor) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1, errors
    assert sorted(p.name for p in tmp_path.iterdir()) == [results[0].name]  # one copy, nothing partial left
    assert (results[0] / "config.json").read_bytes() == files["config.json"]


def test_a_windows_path_is_never_taken_for_a_hub_id():
    from e5np import ModelNotFoundError
    from e5np.engine.hub import resolve_model_folder

    for path in ("C:\\models\\e5-large", "C:/models/e5-large", "models\\e5-large", "\\\\server\\share\\e5"):
        with pytest.raises(ModelNotFoundError, match="no such model folder"):
            resolve_model_folder(path)


def test_replace_is_retried_through_a_sharing_violation(tmp_path, monkeypatch):
    """Windows refuses os.replace over a file another process has open; the open ends soon."""
    from e5np.runtime import portable

    real, calls = os.replace, []

    def busy_twice(source, target):
        calls.append(target)
        if len(calls) <= 2:
            raise PermissionError(13, "The process cannot access the file because it is being used")
        real(source, target)

    (tmp_path / "new").write_text("new", encoding="utf-8")
    monkeypatch.setattr(portable.os, "replace", busy_twice)
    monkeypatch.setattr(portable, "REPLACE_WAIT", 0.0)
    portable.replace(tmp_path / "new", tmp_path / "manifest.json")
    assert len(calls) == 3 and (tmp_path / "manifest.json").read_text(encoding="utf-8") == "new"


def test_range_reader_without_preadv_or_pread(tmp_path, monkeypatch):
    from e5np.runtime import portable

    data = bytes(range(256)) * 64
    (tmp_path / "f.bin").write_bytes(data)
    monkeypatch.delattr(portable.os, "preadv", raising=False)
    monkeypatch.delattr(portable.os, "pread", raising=False)
    reader = portable.RangeReader(tmp_path / "f.bin")
    buffer = bytearray(100)
    assert reader.read_into(memoryview(buffer), 1000) == 100 and bytes(buffer) == data[1000:1100]
    reader.close()


def test_no_one_thread_trials_where_the_load_cannot_be_read():
    """Off Linux there is no /proc/stat: the other processes' load is unknown, and a trial of one
    thread, which only gains beside a busy process, is never made."""
    from e5np.runtime.threads import OtherLoad, ThreadChoice

    choice = ThreadChoice(2, load=OtherLoad("/nonexistent/stat"), machine_cores=2)
    picks = []
    for i in range(400):
        threads = choice.pick(100)
        picks.append(threads)
        choice.record(100, threads, 0.01 * (1 + (i % 7)))  # slow and erratic: every trigger for a trial
    assert set(picks) == {2}
