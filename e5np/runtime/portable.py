"""The Linux-only calls e5np makes, each with what stands in for it on macOS and Windows.

| Linux | elsewhere |
|---|---|
| ``os.sched_getaffinity`` (the CPUs this process may use) | ``os.process_cpu_count()`` (Python 3.13), else ``os.cpu_count()`` |
| ``os.preadv`` (read a file range with no shared file position) | ``os.pread`` (macOS), else seek + readinto under a lock (Windows) |
| ``os.replace`` over a file | the same, retried while Windows reports a sharing violation (another process has it open) |
| ``SO_REUSEADDR`` (rebind while old connections linger) | ``SO_EXCLUSIVEADDRUSE`` on Windows, where SO_REUSEADDR lets a second server bind the same port |
| SIGTERM and SIGINT stop the server | Windows has no catchable SIGTERM: Ctrl-C (SIGINT) and Ctrl-Break (SIGBREAK) |

Each function checks for the call itself, not for the platform's name, so the tests can take the
Linux-only ones away on Linux (``tests/simulated_platform``).
"""

import os
import signal
import socket
import threading
import time

REPLACE_TRIES, REPLACE_WAIT = 20, 0.05  # a sharing violation lasts as long as another reader's open()


def affinity_cpus() -> tuple[int, str]:
    """(CPUs, where the count comes from)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)), "CPUs in the affinity mask"
    if hasattr(os, "process_cpu_count"):
        return os.process_cpu_count() or 1, "CPUs this process may use"
    return os.cpu_count() or 1, "CPUs of the machine"


class RangeReader:
    """``read_into(view, offset)``: bytes of a file at an offset, safe from several threads at once."""

    def __init__(self, path):
        self._file = open(path, "rb", buffering=0)
        self._lock = threading.Lock()

    def read_into(self, view: memoryview, offset: int) -> int:
        fd = self._file.fileno()
        if hasattr(os, "preadv"):
            return os.preadv(fd, [view], offset)
        if hasattr(os, "pread"):
            data = os.pread(fd, len(view), offset)
            view[:len(data)] = data
            return len(data)
        with self._lock:  # seek + read share the file position: one reader at a time
            self._file.seek(offset)
            return self._file.readinto(view)

    def close(self) -> None:
        self._file.close()


def replace(source, target) -> None:
    """``os.replace``, retried while another process holds the target open (Windows)."""
    for attempt in range(REPLACE_TRIES):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if attempt == REPLACE_TRIES - 1:
                raise
            time.sleep(REPLACE_WAIT)


def listen_exclusively(sock: socket.socket) -> None:
    """Set before bind: no other process may bind the same address (both are refused on Linux and
    macOS with SO_REUSEADDR, which only lets lingering connections go; Windows needs its own option)."""
    exclusive = getattr(socket, "SO_EXCLUSIVEADDRUSE", None)
    if exclusive is not None:
        sock.setsockopt(socket.SOL_SOCKET, exclusive, 1)
    else:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)


def stop_signals() -> tuple:
    """The signals that ask a server to stop here: SIGINT, SIGTERM, and SIGBREAK on Windows."""
    return tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGBREAK") if hasattr(signal, name))
