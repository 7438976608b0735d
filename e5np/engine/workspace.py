"""Buffers of the forward pass, allocated once and grown to the largest batch seen (llama2.c's RunState)."""

import numpy as np

from .heap import release_freed_memory


class Workspace:
    def __init__(self):
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, rows: int, cols: int, dtype=np.float32) -> np.ndarray:
        """A [rows, cols] buffer (C-contiguous), reused by every call with the same name."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape[0] < rows or buf.shape[1] != cols or buf.dtype != dtype:
            replaced = buf is not None
            buf = self._buffers[name] = None  # the old buffer goes before the new one comes
            buf = self._buffers[name] = np.empty((rows, cols), dtype)
            if replaced:
                release_freed_memory()  # the old buffer may have come from the heap (see heap.py)
        return buf[:rows]
