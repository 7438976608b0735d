"""Barriers per forward pass and what one costs (issue #20), run by hand on an idle machine.

  python benchmarks/barriers.py

Counts the parallel kernel calls (each a parallel region, ending at a barrier) of one single-query
pass on all-MiniLM-L6-v2 and the e5-large fixture (fp32, two threads), by wrapping every parallel
Numba kernel that e5np's modules call from Python; then times an empty parallel region on one and
two threads, the fixed cost each of those calls pays on an idle machine.
"""

import collections
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np
from numba import prange
from numba.core.registry import CPUDispatcher

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))


@numba.njit(parallel=True)
def _empty_region(x, threads):
    for t in prange(threads):
        x[t] += 1.0


def count_regions() -> None:
    import make_fixtures

    from e5np import E5Model

    counts = collections.Counter()

    def counted(name, dispatcher):
        def call(*args, **kwargs):
            counts[name] += 1
            return dispatcher(*args, **kwargs)
        return call

    for module_name, module in list(sys.modules.items()):
        if module_name.startswith("e5np"):
            for attr, value in list(vars(module).items()):
                if isinstance(value, CPUDispatcher) and value.targetoptions.get("parallel"):
                    setattr(module, attr, counted(f"{value.py_func.__module__.split('.')[-1]}.{value.__name__}", value))
    for folder in (make_fixtures.minilm(), make_fixtures.e5_large_random()):
        model = E5Model(folder, num_threads=2, adapt_threads=False)
        model.encode(["how many rivers are there"], prefix="query: ")
        counts.clear()
        model.encode(["how many rivers are there"], prefix="query: ")
        layers = model.config.num_hidden_layers
        print(f"{folder.name}: {sum(counts.values())} parallel regions in one query's pass ({layers} layers): "
              + ", ".join(f"{name} {n}" for name, n in counts.most_common()))


def region_cost() -> None:
    x = np.zeros(8)
    for threads in (1, 2):
        numba.set_num_threads(threads)
        _empty_region(x, threads)
        runs = []
        for _ in range(7):
            start = time.perf_counter()
            for _ in range(20_000):
                _empty_region(x, threads)
            runs.append((time.perf_counter() - start) / 20_000 * 1e6)
        print(f"an empty parallel region on {threads} thread(s): {statistics.median(runs):.2f} us (median of 7 x 20,000 calls)")


if __name__ == "__main__":
    from e5np.runtime import cpuinfo

    print(f"{cpuinfo('model name')}, {time.strftime('%Y-%m-%d %H:%M')}")
    count_regions()
    region_cost()
