"""The first run says what it is doing (issue #27): one line when e5np's kernels compile, none
when they load from the cache."""

import os
import subprocess
import sys

LINE = "compiling e5np's kernels for this CPU; first run only"


def test_one_line_when_the_kernels_compile_and_none_from_the_cache(tiny_folder, tmp_path):
    env_cache = {"NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    command = [sys.executable, "-m", "e5np.cli", "embed", "query: a first text", "--model", str(tiny_folder)]
    first = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env_cache}, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stderr.count(LINE) == 1, first.stderr
    again = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env_cache}, timeout=600)
    assert again.returncode == 0 and LINE not in again.stderr, again.stderr
    assert again.stdout == first.stdout
