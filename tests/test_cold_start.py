"""The first run says what it is doing, and ``e5np warmup`` does it ahead of time (issue #27): one
line when e5np's kernels compile (naming the other CPU a cache was built for), none once warm."""

import os
import subprocess
import sys

LINE = "compiling e5np's kernels for this CPU"


def test_warmup_leaves_nothing_to_compile_or_pack(tiny_folder, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["E5NP_CACHE_DIR"] = str(tmp_path / "cache")  # kernels and packed weights both under it

    def e5np(*args):
        run = subprocess.run([sys.executable, "-m", "e5np.cli", *args], capture_output=True, text=True, env=env,
                             timeout=900)
        assert run.returncode == 0, run.stderr[-3000:]
        return run

    kernel_dir = subprocess.run([sys.executable, "-c", "from e5np.runtime import kernel_cache_dir as d; print(d())"],
                                capture_output=True, text=True, env=env, check=True).stdout.strip()
    assert kernel_dir.startswith(env["E5NP_CACHE_DIR"])
    os.makedirs(kernel_dir, exist_ok=True)
    with open(os.path.join(kernel_dir, "built-for.txt"), "w") as f:  # as an image built on another CPU leaves it
        f.write("sapphirerapids [features 00000000]\n")

    warm = e5np("warmup", "--model", str(tiny_folder))
    assert warm.stderr.count(LINE) == 1, warm.stderr
    assert "the cache there holds code for sapphirerapids [features 00000000] only" in warm.stderr
    assert "fp32 -> fp32:" in warm.stdout and ".e5pack" in warm.stdout, warm.stdout

    info = e5np("info", "--precision", "fp32", "--model", str(tiny_folder)).stdout
    assert "packed weights of" in info and "cached in" in info, info
    for texts in (["query: a text the warm-up never saw"], ["passage: one", "passage: " + "two " * 300]):
        again = e5np("embed", *texts, "--model", str(tiny_folder), "--precision", "auto")
        assert LINE not in again.stderr, again.stderr
        assert len(again.stdout.splitlines()) == len(texts)
