"""Giving freed heap memory back to the OS (after packing the weights, after a buffer grows).

glibc raises its mmap threshold each time a large block is freed (up to 32 MiB), so later large
blocks come from the heap, and once freed their pages keep counting in the process's RSS: packing
e5-large's weights (the stacked Q|K|V weight, the bf16 rounding steps) left 52 MiB behind, the
forward pass's grown buffers about 30 MiB more (measured). ``malloc_trim`` hands them back. A no-op
where the C library has none (musl, macOS).
"""

import ctypes
import functools


def release_freed_memory() -> None:
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # from the C library the process already runs on
    except (OSError, AttributeError, TypeError):
        return None
