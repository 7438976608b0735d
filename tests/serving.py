"""A real ``e5np serve`` in a subprocess on a free port, for the server tests."""

import os
import re
import subprocess
import sys
import time

import httpx


class RunningServer:
    def __init__(self, *args: str, env: dict | None = None, wait_ready: bool = True):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "e5np", "serve", "--port", "0", *args], stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})})
        line = self.process.stderr.readline()
        match = re.search(r"on (http://[\d.]+:\d+)", line)
        if not match:
            self.process.kill()
            raise RuntimeError(f"the server did not start: {line}{self.process.stderr.read()}")
        self.url = match.group(1)
        if wait_ready:
            self.wait_ready()

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.process.stderr.read()}")
            try:
                if httpx.get(self.url + "/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError("the server did not become ready")

    def stop(self, timeout: float = 60) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return code, self.process.stderr.read()
