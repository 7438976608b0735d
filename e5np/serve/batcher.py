"""One model thread, fed by a bounded queue: texts of concurrent requests merged into batches.

TEI's scheme, without its timer: while the model runs a batch, requests queue; the next batch takes
what is waiting, up to ``max_batch_tokens`` tokens: one text of the oldest request, then the
requests with the fewest texts left first. A request of 2,000 passages shares every batch with the
single queries that arrive behind it instead of holding them for its whole length, and it still
moves on in every batch.

A text's embedding does not depend on the batch it lands in (e5np's kernels are batch-invariant):
what a request gets back equals ``model.encode`` of its texts alone, bit for bit.
"""

import collections
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from .protocol import RequestError

log = logging.getLogger("e5np.serve")


@dataclass(eq=False)
class Work:
    """One request's token ids on their way through the queue."""
    ids: list[np.ndarray]
    normalize: bool
    future: Future = field(default_factory=Future)  # -> float32 [n, hidden]
    out: np.ndarray | None = None
    next: int = 0        # the next text to hand to a batch
    done: int = 0        # texts embedded so far
    queued_at: float = field(default_factory=time.perf_counter)
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def waiting(self) -> int:
        return len(self.ids) - self.next


class Batcher:
    """``submit`` from any thread; the model thread runs ``load`` (a callable returning an
    ``E5Model``), then a warm-up, then batches until ``close``."""

    def __init__(self, load, max_batch_tokens: int, max_queue: int):
        self._load, self.max_batch_tokens, self.max_queue = load, max_batch_tokens, max_queue
        self.observe = lambda texts, tokens: None  # (texts, tokens) of each model step, for metrics
        self._pending: collections.deque[Work] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self.queued_texts = 0
        self.model = None
        self.ready = threading.Event()    # the model is loaded and its kernels compiled
        self.stopped = threading.Event()  # the model thread has ended (closed, or the model failed to load)
        self.load_error: BaseException | None = None
        self.phase = "loading"  # then "warming up" (kernels loaded from the cache, or compiled), "ready" or "failed"
        self._thread = threading.Thread(target=self._run, name="e5np-model", daemon=True)

    def start(self) -> "Batcher":
        self._thread.start()
        return self

    def submit(self, ids: list[np.ndarray], normalize: bool) -> Work:
        """Queue one request's texts; refuses with 429 when the queue would pass ``max_queue``
        (a request always gets in when nothing waits, so no request size is refused forever)."""
        work = Work(ids, normalize)
        with self._cond:
            if self._closing:
                raise RequestError("unavailable", "the server is shutting down", retry_after=1)
            if self.queued_texts and self.queued_texts + len(ids) > self.max_queue:
                raise RequestError("overloaded", f"{self.queued_texts} texts are waiting (--max-queue "
                                   f"{self.max_queue}); retry shortly", retry_after=1)
            self.queued_texts += len(ids)
            self._pending.append(work)
            self._cond.notify()
        return work

    def close(self, timeout: float | None = None) -> None:
        """Finish what was accepted, then end the model thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # --- the model thread ------------------------------------------------------------------
    def _run(self) -> None:
        try:
            model = self._load()
            self.phase = "warming up"
            model.encode(["warm up", "a longer text to warm up the kernels " * 20])
        except BaseException as e:  # noqa: BLE001 - reported by the server, which exits 2
            self.load_error, self.phase = e, "failed"
            self._fail_all(RequestError("unavailable", f"the model failed to load: {e}"))
            self.stopped.set()
            return
        self.model, self.phase = model, "ready"
        self.ready.set()
        while (batch := self._next_batch()) is not None:
            self._embed(model, batch)
        self.stopped.set()

    def _next_batch(self) -> list[tuple[Work, int]] | None:
        """Up to ``max_batch_tokens`` tokens: the oldest request's next text first (no request
        waits forever), then the texts of the requests with the fewest left (a single query never
        waits behind a long request; among long ones, the nearest to done finishes first)."""
        with self._cond:
            while not self._pending and not self._closing:
                self._cond.wait()
            if not self._pending:
                return None
            batch, tokens = [], 0
            for work in [self._pending[0]] + sorted(self._pending, key=lambda w: w.waiting):
                while work.waiting:
                    length = len(work.ids[work.next])
                    if batch and tokens + length > self.max_batch_tokens:
                        break
                    batch.append((work, work.next))
                    tokens += length
                    work.next += 1
                    if work is self._pending[0] and len(batch) == 1:
                        break  # the oldest's first text; its others wait their turn by size
                if batch and tokens >= self.max_batch_tokens:
                    break
            self._pending = collections.deque(w for w in self._pending if w.waiting)
            self.queued_texts -= len(batch)
            return batch

    def _embed(self, model, batch: list[tuple[Work, int]]) -> None:
        start = time.perf_counter()
        for work, _ in batch:
            if work.started_at is None:
                work.started_at = start
        try:
            for normalize in (True, False):
                part = [(work, i) for work, i in batch if work.normalize == normalize]
                if part:
                    vectors = model.encode_tokens([work.ids[i] for work, i in part], normalize=normalize,
                                                  max_batch_tokens=self.max_batch_tokens)
                    self._scatter(part, vectors)
        except Exception as e:  # noqa: BLE001 - the batch's requests get a 500; the server keeps serving
            log.exception("embedding a batch of %d texts failed", len(batch))
            self._fail({work for work, _ in batch}, RequestError("backend", f"the model failed on this batch: "
                                                                 f"{type(e).__name__}: {e}"))
        self.observe(len(batch), sum(len(work.ids[i]) for work, i in batch))

    def _scatter(self, part, vectors: np.ndarray) -> None:
        now = time.perf_counter()
        for (work, i), vector in zip(part, vectors):
            if work.future.done():
                continue  # failed with an earlier batch
            if work.out is None:
                work.out = np.empty((len(work.ids), vectors.shape[1]), np.float32)
            work.out[i] = vector
            work.done += 1
            if work.done == len(work.ids):
                work.finished_at = now
                work.future.set_result(work.out)

    def _fail(self, works, error: RequestError) -> None:
        with self._cond:
            for work in works:
                if work in self._pending:
                    self._pending.remove(work)
                    self.queued_texts -= work.waiting
                if not work.future.done():
                    work.future.set_exception(error)

    def _fail_all(self, error: RequestError) -> None:
        with self._cond:
            self._closing = True
            works = list(self._pending)
        self._fail(works, error)
