"""Markers for the tests whose tools only Linux (or Unix) has: off it they skip, saying why."""

import os
import signal

import pytest

proc_smaps = pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="reads /proc/self/smaps (Linux only)")
sigkill = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="kills a process with SIGKILL (no such signal on Windows)")
killpg = pytest.mark.skipif(not hasattr(os, "killpg"), reason="kills a process group with os.killpg (Unix only)")
getrusage = pytest.mark.skipif(os.name != "posix", reason="peak RSS from resource.getrusage (Unix only)")
rlimit_fsize = pytest.mark.skipif(os.name != "posix", reason="a full disk simulated with RLIMIT_FSIZE (Unix only)")
