"""The one place that sets Numba compile flags for every e5np kernel.

- ``cache=True``: the second process loads machine code from disk instead of compiling
  (kernels are plain top-level functions: cached closures are unsafe, see the notes). Numba keys
  a cached kernel by its own source file only, so a kernel that inlines an intrinsic from another
  file (the GEMM tiles, the AMX block) would keep running stale machine code after that file
  changed, an upgrade included. The cache therefore lives in a folder named by a hash of every
  kernel source: ``CACHE_DIR`` (under ``$NUMBA_CACHE_DIR`` if set, else ``cache_home()/numba``).
- ``fastmath={"contract"}``: LLVM may fuse ``a * b + c`` into one FMA, which is exact per
  element and the same on every call. Nothing else (no reassociation): every sum runs in
  the order it is written, so results are reproducible bit for bit.
- ``error_model="numpy"``: a float division by zero gives inf/nan instead of raising. Python's
  model puts a check and an exception path in every loop that divides, which stops LLVM from
  vectorizing it (a rational erf ran 10x slower).
"""

import hashlib
import logging
import os
from pathlib import Path

import numba
from numba.core import config, event

FASTMATH = frozenset({"contract"})
# For a float64 sum over one row of float32 values: LLVM may split it into vector lanes. The
# result differs from the sequential sum by float64 round-off at most, and the order is fixed by
# the compiled code: the same for every batch and thread count.
ROW_REDUCTION = frozenset({"contract", "reassoc"})


def source_digest(paths) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_home() -> str:
    """Where e5np keeps what it builds once (compiled kernels, packed weights): ``$E5NP_CACHE_DIR``,
    else ``$XDG_CACHE_HOME/e5np``, else ~/.cache/e5np. ``e5np warmup`` fills it; an image bakes it in."""
    return os.environ.get("E5NP_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "e5np")


def _cache_dir() -> str:
    base = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(cache_home(), "numba")
    return os.path.join(base, source_digest(Path(__file__).parent.glob("*.py")))


CACHE_DIR = _cache_dir()


def kernel(fn=None, *, parallel=False, row_reduction=False):
    """``@kernel`` / ``@kernel(parallel=True)``: njit with the project's flags, cached in CACHE_DIR."""
    flags = set(ROW_REDUCTION if row_reduction else FASTMATH)

    def decorate(f):
        saved, config.CACHE_DIR = config.CACHE_DIR, CACHE_DIR  # read once, when the cache is set up
        try:
            return numba.njit(cache=True, nogil=True, fastmath=flags, parallel=parallel, error_model="numpy")(f)
        finally:
            config.CACHE_DIR = saved

    return decorate if fn is None else decorate(fn)


class _FirstCompile(event.Listener):
    """Says, once per process, that e5np's kernels are being compiled: Numba's "numba:compile"
    event fires only where no cached machine code was found (a fresh install, an upgrade, another
    CPU). Numba keys cached code by the CPU it was compiled for; ``BUILT_FOR`` in the cache folder
    lists those CPUs, so a cache baked into an image on another machine is named as the reason."""

    def __init__(self):
        self.compiled = 0

    def on_start(self, ev):
        dispatcher = ev.data["dispatcher"]
        if not getattr(dispatcher.py_func, "__module__", "").startswith("e5np.kernels"):
            return
        if self.compiled == 0:
            cpu, others = _note_built_for()
            why = f"the cache there holds code for {', '.join(others)} only" if others else "first run only"
            logging.getLogger("e5np").warning("compiling e5np's kernels for this CPU (%s); %s (cached in %s)",
                                              cpu, why, CACHE_DIR)
        self.compiled += 1

    def on_end(self, ev):
        pass


BUILT_FOR = "built-for.txt"


def kernels_built_for() -> list[str]:
    """The CPUs the kernel cache folder holds compiled code for (as ``_note_built_for`` wrote them)."""
    try:
        return (Path(CACHE_DIR) / BUILT_FOR).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []


def _note_built_for() -> tuple[str, list[str]]:
    """(this build's CPU, the other CPUs the cache folder already has code for), adding this one."""
    from .target import compile_features

    _, cpu, features = compile_features()
    this = f"{cpu} [features {hashlib.sha256(','.join(sorted(features)).encode()).hexdigest()[:8]}]"
    path, known = Path(CACHE_DIR) / BUILT_FOR, kernels_built_for()
    try:
        if this not in known:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:
                f.write(this + "\n")
    except OSError:
        pass  # a read-only cache: Numba cannot save there either, and says so itself
    return this, [k for k in known if k != this]


_first_compile = _FirstCompile()
event.register("numba:compile", _first_compile)


def kernel_cache_dir() -> str:
    """The folder this process's kernels are cached in (``CACHE_DIR``)."""
    return CACHE_DIR


def kernels_compiled() -> int:
    """How many e5np kernels this process compiled (0: every one came from the cache)."""
    return _first_compile.compiled
