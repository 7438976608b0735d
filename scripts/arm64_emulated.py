"""e5np on Linux aarch64, emulated on an x86-64 Debian host with qemu-user (correctness only, never speed).

  python scripts/arm64_emulated.py prepare            # qemu-user-static, an arm64 sysroot, aarch64 wheels
  python scripts/arm64_emulated.py run -- ARGS...     # python3.11 (aarch64) ARGS, e5np importable

``prepare`` is idempotent and keeps everything under ``$E5NP_ARM64_DIR`` (default
~/.cache/e5np/arm64), so a second run costs seconds:
1. ``qemu-user-static`` from Debian (as root: ``apt-get install``); no binfmt_misc needed, qemu is
   called by name;
2. a sysroot: Debian's arm64 Python 3.11 and the C libraries it links, fetched with
   ``apt-get download`` (after ``dpkg --add-architecture arm64``) and unpacked with ``dpkg -x``;
3. the aarch64 wheels of e5np's dependencies from PyPI, installed on the host with
   ``pip install --target --platform manylinux2014_aarch64 --only-binary=:all:`` (pip under
   emulation is ~10x slower), and e5np itself as a wheel built here (it is pure Python).
Run from a folder other than the repository: the source tree's ``e5np/`` lacks ``e5np.kernels``.
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOME = Path(os.environ.get("E5NP_ARM64_DIR", Path.home() / ".cache" / "e5np" / "arm64"))
SYSROOT, SITE, DEBS = HOME / "sysroot", HOME / "site", HOME / "debs"
PACKAGES = ["python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libc6", "libgcc-s1",
            "libstdc++6", "libgomp1", "zlib1g", "libexpat1", "libffi8", "libssl3", "libbz2-1.0", "liblzma5",
            "libsqlite3-0", "libuuid1", "libcrypt1", "libncursesw6", "libtinfo6", "libreadline8"]
ARCH_ALL = ["media-types"]  # no :arm64 build: one package for every architecture
WHEELS = ["numpy", "numba", "safetensors", "tokenizers", "huggingface_hub", "threadpoolctl", "scipy", "pytest"]
PLATFORMS = ["manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"]
QEMU = "qemu-aarch64-static"


def sh(*command, **kwargs):
    print("+", " ".join(map(str, command)), file=sys.stderr, flush=True)
    return subprocess.run(list(map(str, command)), check=True, **kwargs)


def prepare() -> None:
    if not shutil.which(QEMU):
        sh("apt-get", "update", "-q")
        sh("apt-get", "install", "-y", "-q", "qemu-user-static")
    python = SYSROOT / "usr" / "bin" / "python3.11"
    if not python.exists():
        if "arm64" not in subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True,
                                         text=True).stdout.split():
            sh("dpkg", "--add-architecture", "arm64")
        sh("apt-get", "update", "-q")
        DEBS.mkdir(parents=True, exist_ok=True)
        sh("apt-get", "download", "-q", *[f"{p}:arm64" for p in PACKAGES], *ARCH_ALL, cwd=DEBS)
        partial = SYSROOT.with_name("sysroot.partial")
        shutil.rmtree(partial, ignore_errors=True)
        for deb in sorted(DEBS.glob("*.deb")):
            sh("dpkg", "-x", deb, partial)
        partial.rename(SYSROOT)
    stamp = SITE / ".e5np-source"
    source = _source_digest()
    if not (SITE / "numba").is_dir() or not stamp.exists() or stamp.read_text(encoding="utf-8") != source:
        dist = HOME / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, REPO)
        shutil.rmtree(SITE, ignore_errors=True)
        platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
        sh(sys.executable, "-m", "pip", "install", "-q", "--target", SITE, "--only-binary=:all:", "--python-version",
           "3.11", "--implementation", "cp", *platforms, "-f", dist, "e5np", *WHEELS)
        stamp.write_text(source, encoding="utf-8")


def _source_digest() -> str:
    import hashlib
    digest = hashlib.sha256()
    for path in sorted([*REPO.glob("e5np/**/*.py"), *REPO.glob("kernels/*.py"), REPO / "pyproject.toml"]):
        digest.update(str(path.relative_to(REPO)).encode() + path.read_bytes())
    return digest.hexdigest()


def command(args: list[str]) -> list[str]:
    return [QEMU, "-L", str(SYSROOT), str(SYSROOT / "usr" / "bin" / "python3.11"), *args]


def environment() -> dict:
    return {**os.environ, "PYTHONPATH": str(SITE), "NUMBA_CACHE_DIR": str(HOME / "numba-cache"),
            "PYTHONDONTWRITEBYTECODE": "1"}


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command(args), env=environment(), **kwargs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("prepare", "run"))
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    if options.action == "prepare":
        prepare()
        return 0
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    return run(args).returncode


if __name__ == "__main__":
    sys.exit(main())
