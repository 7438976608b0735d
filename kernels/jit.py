"""The one place that sets Numba compile flags for every e5np kernel.

- ``cache=True``: the second process loads machine code from disk instead of compiling
  (kernels are plain top-level functions: cached closures are unsafe, see the notes).
- ``fastmath={"contract"}``: LLVM may fuse ``a * b + c`` into one FMA, which is exact per
  element and the same on every call. Nothing else (no reassociation): every sum runs in
  the order it is written, so results are reproducible bit for bit.
- ``error_model="numpy"``: a float division by zero gives inf/nan instead of raising. Python's
  model puts a check and an exception path in every loop that divides, which stops LLVM from
  vectorizing it (a rational erf ran 10x slower).
"""

import numba

FASTMATH = frozenset({"contract"})
# For a float64 sum over one row of float32 values: LLVM may split it into vector lanes. The
# result differs from the sequential sum by float64 round-off at most, and the order is fixed by
# the compiled code: the same for every batch and thread count.
ROW_REDUCTION = frozenset({"contract", "reassoc"})


def kernel(fn=None, *, parallel=False, row_reduction=False):
    """``@kernel`` / ``@kernel(parallel=True)``: njit with the project's flags."""
    flags = set(ROW_REDUCTION if row_reduction else FASTMATH)
    jit = numba.njit(cache=True, nogil=True, fastmath=flags, parallel=parallel, error_model="numpy")
    return jit if fn is None else jit(fn)
