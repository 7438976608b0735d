"""The server's queue in one process, with the model thread held at a gate: 429 when full,
503 until warmed up, 500 for a failed batch (and serving after it), fair turns between requests."""

import threading

import numpy as np
import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from e5np import E5Model  # noqa: E402
from e5np.serve.app import create_app  # noqa: E402
from e5np.serve.batcher import Batcher  # noqa: E402
from e5np.serve.protocol import RequestError  # noqa: E402
from e5np.serve.settings import ServeSettings  # noqa: E402


class GatedModel:
    """The real model, whose batches wait for ``gate`` and are recorded; ``fail_next`` makes one raise."""

    def __init__(self, model: E5Model):
        self.model, self.gate, self.batches, self.fail_next = model, threading.Event(), [], False

    def __getattr__(self, name):
        return getattr(self.model, name)

    def encode(self, *args, **kwargs):  # the warm-up
        return self.model.encode(*args, **kwargs)

    def encode_tokens(self, ids, **kwargs):
        assert self.gate.wait(60), "gate never opened"
        self.batches.append([len(i) for i in ids])
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("simulated kernel failure")
        return self.model.encode_tokens(ids, **kwargs)


@pytest.fixture()
def served(tiny_folder):
    model = GatedModel(E5Model(tiny_folder))
    loaded = threading.Event()

    def load():
        assert loaded.wait(60)
        return model

    settings = ServeSettings(model=str(tiny_folder), max_client_batch_size=8, max_queue=8, max_batch_tokens=64)
    batcher = Batcher(load, settings.max_batch_tokens, settings.max_queue).start()
    with TestClient(create_app(batcher, settings)) as http:
        yield http, model, loaded, batcher
    model.gate.set()
    batcher.close()


def test_health_is_503_until_the_model_is_loaded_and_warm(served):
    http, model, loaded, batcher = served
    reply = http.get("/health")
    assert reply.status_code == 503 and reply.json()["error_type"] == "Unhealthy"
    assert http.post("/v1/embeddings", json={"input": "hi"}).status_code == 503
    loaded.set()
    assert batcher.ready.wait(60)
    assert http.get("/health").status_code == 200


def test_full_queue_is_429_with_retry_after(served):
    http, model, loaded, batcher = served
    loaded.set()
    assert batcher.ready.wait(60)
    ids = model.tokenize(["a few words"]).ids
    first = batcher.submit(ids * 2, True)  # taken by the model thread, held at the gate
    while batcher.queued_texts:
        threading.Event().wait(0.001)
    waiting = [batcher.submit(ids * 4, True), batcher.submit(ids * 4, True)]  # the queue holds 8
    reply = http.post("/embed", json={"inputs": ["one more"]})
    assert reply.status_code == 429 and reply.headers["retry-after"] == "1"
    assert reply.json()["error_type"] == "Overloaded"
    reply = http.post("/v1/embeddings", json={"input": ["one more"]})
    assert reply.status_code == 429 and reply.json()["error"]["type"] == "rate_limit_error"
    model.gate.set()
    expected = model.model.encode(["a few words"])[0]
    for work in [first] + waiting:
        assert all(np.array_equal(v, expected) for v in work.future.result(60))


def test_a_failed_batch_is_500_and_the_server_goes_on(served):
    http, model, loaded, batcher = served
    loaded.set()
    assert batcher.ready.wait(60)
    model.fail_next = True
    model.gate.set()
    reply = http.post("/v1/embeddings", json={"input": ["hi"]})
    assert reply.status_code == 500 and "simulated kernel failure" in reply.json()["error"]["message"]
    assert "Traceback" not in reply.text
    reply = http.post("/v1/embeddings", json={"input": ["hi"], "encoding_format": "float"})
    assert reply.status_code == 200
    assert np.array_equal(np.array(reply.json()["data"][0]["embedding"], np.float32), model.model.encode("hi"))


def test_requests_take_turns_in_a_batch(served):
    """A long request does not hold a short one back: the short one's text is in the first batch
    after it arrives, beside the long one's next texts."""
    http, model, loaded, batcher = served
    loaded.set()
    assert batcher.ready.wait(60)
    batcher.max_queue = 100
    long_ids = model.tokenize([f"passage number {i} about a river" for i in range(40)]).ids
    short_ids = model.tokenize(["query"]).ids
    long_work = batcher.submit(long_ids, True)
    short_work = batcher.submit(short_ids, True)
    model.gate.set()
    long_work.future.result(60), short_work.future.result(60)
    short_length = len(short_ids[0])
    first_with_short = next(i for i, b in enumerate(model.batches) if short_length in b)
    assert first_with_short == 0 and len(model.batches) > 1, model.batches


def test_closed_batcher_refuses_new_work(tiny_folder):
    model = E5Model(tiny_folder)
    batcher = Batcher(lambda: model, 64, 8).start()
    assert batcher.ready.wait(60)
    batcher.close()
    with pytest.raises(RequestError, match="shutting down"):
        batcher.submit(model.tokenize(["hi"]).ids, True)


def test_batch_order_oldest_first_then_fewest_left(tiny_folder):
    model = E5Model(tiny_folder)
    word = model.tokenize(["word"]).ids  # one text of 3 tokens
    batcher = Batcher(lambda: model, max_batch_tokens=4 * len(word[0]), max_queue=100)  # 4 texts a batch
    long, first, second = batcher.submit(word * 10, True), batcher.submit(word, True), batcher.submit(word, True)
    assert [(w, i) for w, i in batcher._next_batch()] == [(long, 0), (first, 0), (second, 0), (long, 1)]
    assert [(w, i) for w, i in batcher._next_batch()] == [(long, i) for i in range(2, 6)]
    later = batcher.submit(word * 3, True)  # fewer left than the long one: it goes first, after the oldest's one
    assert [(w, i) for w, i in batcher._next_batch()] == [(long, 6), (later, 0), (later, 1), (later, 2)]
    assert batcher.queued_texts == 3


def test_health_says_loading_then_compiling_or_warming_up(served, monkeypatch):
    """The 503 body says what the model thread is doing (issue #27): loading the files, then the
    warm-up pass, which compiles the kernels where none are cached on this CPU."""
    import e5np.serve.app as app

    http, model, loaded, batcher = served
    assert "the model is loading" in http.get("/health").json()["error"]
    warm_up, warming = threading.Event(), threading.Event()

    def held_warm_up(*args, **kwargs):
        warming.set()
        assert warm_up.wait(60)
        return model.model.encode(*args, **kwargs)

    monkeypatch.setattr(model, "encode", held_warm_up, raising=False)
    monkeypatch.setattr(app, "kernels_compiled", lambda: 3)
    loaded.set()
    assert warming.wait(60)
    assert "is compiling its kernels for this CPU (first run only)" in http.get("/health").json()["error"]
    monkeypatch.setattr(app, "kernels_compiled", lambda: 0)
    assert "the model is warming up" in http.get("/health").json()["error"]
    warm_up.set()
    assert batcher.ready.wait(60) and http.get("/health").status_code == 200
