"""Jobs handed out one at a time to whichever worker thread is free: ``next_job(counter)``.

A parallel loop that splits its jobs evenly in advance finishes when the slower thread does. On
the 2-vCPU machines here the two cores do not run at the same speed, and not at the same speed
from one minute to the next (the host's other tenants): the same one-thread AMX GEMM measured 446
GFLOP/s on one core and 826 on the other, and, with the jobs split evenly, one thread of a
two-thread GEMM finished in half the time of the other. Workers that take the next job from a
shared counter share the work by the speed they actually get.

Which thread computes a job never changes its numbers: results stay bit for bit the same.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .jit import kernel


@intrinsic
def _fetch_add_one(typingctx, address):
    """The int64 at ``address`` += 1, atomically; returns the value before."""
    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        pointer = builder.inttoptr(args[0], i64.as_pointer())
        return builder.atomic_rmw("add", pointer, ir.Constant(i64, 1), "monotonic")
    return types.int64(types.intp), codegen


@kernel
def job_counter():
    """A fresh counter for ``next_job``: one per parallel loop, shared by its workers."""
    return np.zeros(1, np.int64)


@kernel
def next_job(counter):
    """The next job number (0, 1, 2, ...), each handed to exactly one caller."""
    return _fetch_add_one(counter.ctypes.data)
