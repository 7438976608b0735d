"""10,000 requests of changing shapes (issue #29): the server's memory stays flat after warm-up and
its queue is empty at the end (public reports: TEI's RSS growing from 6 to 42 GB over 400k calls,
ONNX Runtime's arena growing with every new input shape)."""

import concurrent.futures
import re

import httpx
import numpy as np

from linux_only import proc_smaps
from serving import RunningServer

REQUESTS, WARM_UP, THREADS = 10_000, 1_000, 8
CACHE_MB = 4
GROWTH_BOUND_MIB = 24 + CACHE_MB  # the cache may fill to its bound; beyond that, allocator noise only


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) / 1024


def _requests(count: int, seed: int):
    rng = np.random.default_rng(seed)
    words = ["protein", "summit", "ocean", "graph", "kernel", "café", "数据", "échelle"]
    for i in range(count):
        texts = [" ".join(rng.choice(words, size=rng.integers(1, 120))) + f" {i}-{j}"
                 for j in range(rng.integers(1, 9))]
        route = ["/embed", "/v1/embeddings", "/similarity"][i % 3]
        yield route, ({"inputs": texts} if route == "/embed" else {"input": texts} if route == "/v1/embeddings"
                      else {"inputs": {"source_sentence": texts[0], "sentences": texts}})


@proc_smaps
def test_memory_is_flat_over_ten_thousand_requests(tiny_folder):
    server = RunningServer("--model", str(tiny_folder), "--cache-mb", str(CACHE_MB))
    try:
        def run(batch):
            with httpx.Client(base_url=server.url, timeout=60) as client:
                return [client.post(route, json=body).status_code for route, body in batch]

        def run_all(count, seed):
            work = list(_requests(count, seed))
            with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
                return [s for statuses in pool.map(run, [work[i::THREADS] for i in range(THREADS)]) for s in statuses]

        assert set(run_all(WARM_UP, 1)) == {200}
        before = _rss_mib(server.process.pid)
        statuses = run_all(REQUESTS, 2)
        after = _rss_mib(server.process.pid)
        assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
        assert after - before < GROWTH_BOUND_MIB, f"RSS grew {after - before:.1f} MiB over {REQUESTS} requests"
        metrics = httpx.get(server.url + "/metrics").text
        assert re.search(r"^te_queue_size 0$", metrics, re.M)
        assert 'status="500"' not in metrics
    finally:
        server.stop()
