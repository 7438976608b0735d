"""A simulated macOS or Windows for e5np's entry points, on Linux (``E5NP_SIMULATE=macos|windows``).

Loaded by Python at start-up when this folder is on PYTHONPATH (tests/test_platforms.py puts it
there for a subprocess). It takes away what those systems lack, for e5np's own code:
- both: ``os.sched_getaffinity`` (and the other sched_* calls), ``/proc`` and ``/sys`` (opening
  them from e5np raises FileNotFoundError), ``os.preadv``;
- Windows: also ``os.pread`` and the ``fcntl`` module.
Other libraries (Ray, uvicorn) keep the real files: only e5np's own calls are put to the test.
"""

import builtins
import io
import os
import sys

SIMULATED = os.environ.get("E5NP_SIMULATE")


def _from_e5np() -> bool:
    frame = sys._getframe(2)
    for _ in range(8):  # open() is reached through pathlib or io within a few frames
        if frame is None:
            return False
        name = frame.f_globals.get("__name__", "")
        if name.startswith("e5np") and name != __name__:
            return True
        if not name.startswith(("pathlib", "io", "_io", "codecs", "builtins")):
            return False
        frame = frame.f_back
    return False


def _no_proc(real_open):
    def open_(file, *args, **kwargs):
        path = os.fspath(file) if isinstance(file, (str, bytes, os.PathLike)) else ""
        path = path.decode() if isinstance(path, bytes) else path
        if path.startswith(("/proc", "/sys")) and _from_e5np():
            raise FileNotFoundError(2, f"No such file or directory (simulated {SIMULATED})", path)
        return real_open(file, *args, **kwargs)
    return open_


if SIMULATED in ("macos", "windows"):
    for name in ("sched_getaffinity", "sched_setaffinity", "preadv"):
        if hasattr(os, name):
            delattr(os, name)
    builtins.open = io.open = _no_proc(builtins.open)
    if SIMULATED == "windows":
        if hasattr(os, "pread"):
            delattr(os, "pread")
        sys.modules["fcntl"] = None  # import fcntl -> ImportError, as on Windows
