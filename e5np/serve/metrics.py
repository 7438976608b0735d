"""Prometheus text exposition, written out by hand (three kinds, no client library needed).

Names follow TEI's ``te_*`` where TEI has one, so dashboards built for TEI read e5np too.
"""

import bisect
import threading

SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
COUNTS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
TOKENS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384)


class Counter:
    def __init__(self, name: str, help: str):
        self.name, self.help, self.values = name, help, {}

    def inc(self, amount: float = 1, **labels) -> None:
        key = tuple(sorted(labels.items()))
        self.values[key] = self.values.get(key, 0) + amount

    def lines(self):
        yield f"# TYPE {self.name} counter"
        for key, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(key)} {value:g}"


class Gauge:
    """A value read when rendered (``kind="counter"`` for a total kept elsewhere, e.g. the cache's)."""

    def __init__(self, name: str, help: str, read, kind: str = "gauge"):
        self.name, self.help, self.read, self.kind = name, help, read, kind

    def lines(self):
        yield f"# TYPE {self.name} {self.kind}"
        yield f"{self.name} {self.read():g}"


class Histogram:
    def __init__(self, name: str, help: str, buckets):
        self.name, self.help, self.buckets = name, help, tuple(buckets)
        self.counts, self.sum, self.count = [0] * (len(self.buckets) + 1), 0.0, 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self):
        yield f"# TYPE {self.name} histogram"
        total = 0
        for bound, count in zip(self.buckets + ("+Inf",), self.counts):
            total += count
            yield f'{self.name}_bucket{{le="{bound}"}} {total}'
        yield f"{self.name}_sum {self.sum:g}"
        yield f"{self.name}_count {self.count}"


class ServerMetrics:
    """What the server counts; ``render`` is the /metrics body."""

    def __init__(self, queue_size, cache=None):
        self._lock = threading.Lock()
        self.requests = Counter("te_request_count", "requests by route and status")
        self.texts = Counter("e5np_texts_total", "texts embedded")
        self.tokens = Counter("e5np_tokens_total", "tokens embedded ([CLS] and [SEP] included)")
        self.request_time = Histogram("te_request_duration", "seconds from request to reply", SECONDS)
        self.queue_time = Histogram("te_request_queue_duration", "seconds a request waited for the model", SECONDS)
        self.inference_time = Histogram("te_request_inference_duration", "seconds from a request's first batch "
                                        "to its last", SECONDS)
        self.batch_size = Histogram("te_batch_next_size", "texts per model step", COUNTS)
        self.batch_tokens = Histogram("te_batch_next_tokens", "tokens per model step", TOKENS)
        self.queue = Gauge("te_queue_size", "texts waiting for the model", queue_size)
        self._all = [self.requests, self.texts, self.tokens, self.request_time, self.queue_time,
                     self.inference_time, self.batch_size, self.batch_tokens, self.queue]
        if cache is not None:  # TEI has no cache: e5np's own names
            self._all += [Gauge("e5np_cache_hits_total", "texts answered from the embedding cache", lambda: cache.hits, "counter"),
                          Gauge("e5np_cache_misses_total", "texts the cache did not hold", lambda: cache.misses, "counter"),
                          Gauge("e5np_cache_evictions_total", "entries evicted to stay within --cache-mb",
                                lambda: cache.evictions, "counter"),
                          Gauge("e5np_cache_bytes", "bytes the cache holds", lambda: cache.bytes)]

    def request(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests.inc(route=route, status=str(status))
            self.request_time.observe(seconds)

    def embedded(self, texts: int, tokens: int, queue_seconds: float, inference_seconds: float) -> None:
        with self._lock:
            self.texts.inc(texts)
            self.tokens.inc(tokens)
            self.queue_time.observe(queue_seconds)
            self.inference_time.observe(inference_seconds)

    def batch(self, texts: int, tokens: int) -> None:
        with self._lock:
            self.batch_size.observe(texts)
            self.batch_tokens.observe(tokens)

    def render(self) -> str:
        with self._lock:
            lines = []
            for metric in self._all:
                lines.append(f"# HELP {metric.name} {metric.help}")
                lines.extend(metric.lines())
        return "\n".join(lines) + "\n"


def _labels(key) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in key) + "}" if key else ""
