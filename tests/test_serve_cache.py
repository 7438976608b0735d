"""The server's embedding cache (issue #29): a hit is the vector a fresh pass gives, bit for bit,
however requests are batched and interleaved; the byte bound holds; least recently used goes first."""

import concurrent.futures
import re

import httpx
import numpy as np
import pytest

from e5np import E5Model
from e5np.serve.embedding_cache import ENTRY_OVERHEAD, EmbeddingCache
from serving import RunningServer

TEXTS = [f"passage: text number {i} about {'protein ' * (i % 7)}" for i in range(40)]
CACHE_MB = 0.02  # ~20 kB: a dozen MiniLM vectors, so the stream below evicts


def ids(n):
    return np.arange(n, dtype=np.int32) + 100


def test_least_recently_used_is_evicted_first():
    entry = 4 * 4 + 8 * 4 + ENTRY_OVERHEAD  # 4 ids, 8 floats
    cache = EmbeddingCache(3 * entry)
    vectors = np.arange(32, dtype=np.float32).reshape(4, 8)
    keys = [np.array([i, 1, 2, 3], np.int32) for i in range(4)]
    cache.put_many(keys[:3], True, vectors[:3])
    cache.get_many([keys[0]], True)  # 0 is now the most recent: 1 goes first
    cache.put_many([keys[3]], True, vectors[3:])
    found = cache.get_many(keys, True)
    assert [f is not None for f in found] == [True, False, True, True]
    assert cache.evictions == 1 and cache.bytes == 3 * entry
    assert np.array_equal(found[3], vectors[3])
    found[0][:] = -1  # a copy: the cache's vector is unchanged
    assert np.array_equal(cache.get_many([keys[0]], True)[0], vectors[0])
    assert cache.get_many([keys[0]], False) == [None]  # normalize is part of the key


def test_the_byte_bound_holds_under_unique_texts():
    cache = EmbeddingCache(10_000)
    for n in range(1, 300):
        cache.put_many([ids(n)], True, np.ones((1, 384), np.float32))
        assert cache.bytes <= 10_000
    assert cache.evictions > 0 and len(cache) > 0


def test_a_size_of_zero_keeps_nothing():
    cache = EmbeddingCache(0)
    cache.put_many([ids(3)], True, np.ones((1, 8), np.float32))
    assert cache.get_many([ids(3)], True) == [None] and len(cache) == 0


@pytest.fixture(scope="module")
def server(minilm_folder):
    running = RunningServer("--model", str(minilm_folder), "--cache-mb", str(CACHE_MB))
    yield running
    running.stop()


def _metric(server, name):
    found = re.search(rf"^{name} (\S+)$", httpx.get(server.url + "/metrics").text, re.M)
    return float(found.group(1))


def test_hits_are_bit_for_bit_a_fresh_pass_under_concurrency(server, minilm_folder):
    expected = {t: v for t, v in zip(TEXTS, E5Model(minilm_folder).encode(TEXTS))}
    rng = np.random.default_rng(3)
    requests = [list(rng.choice(TEXTS[:12], size=rng.integers(1, 6))) for _ in range(120)]

    def call(texts):
        reply = httpx.post(server.url + "/embed", json={"inputs": texts}, timeout=60)
        return np.array(reply.json(), np.float32), int(reply.headers["x-cache-hits"])

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(call, requests))
    for texts, (got, _) in zip(requests, replies):
        for t, v in zip(texts, got):
            assert np.array_equal(v, expected[t]), f"{t!r}: the reply differs from a fresh pass"
    assert sum(hits for _, hits in replies) > 0 and _metric(server, "e5np_cache_hits_total") > 0
    # dimensions shorten the cached vector as a fresh one: first 64 values, normalized again
    short = np.array(httpx.post(server.url + "/embed", json={"inputs": TEXTS[0], "dimensions": 64}).json()[0])
    head = expected[TEXTS[0]][:64].astype(np.float64)
    assert np.array_equal(short.astype(np.float32), (head / np.linalg.norm(head)).astype(np.float32))


def test_a_fully_cached_request_never_queues(server):
    httpx.post(server.url + "/embed", json={"inputs": TEXTS[:2]})
    steps = _metric(server, "te_batch_next_size_count")
    reply = httpx.post(server.url + "/v1/embeddings", json={"input": TEXTS[:2]})
    assert reply.status_code == 200 and reply.headers["x-cache-hits"] == "2"
    assert _metric(server, "te_batch_next_size_count") == steps


def test_the_servers_cache_stays_within_its_bound(server):
    for i in range(0, 200, 20):
        unique = [f"query: unique text {j}" for j in range(i, i + 20)]
        assert httpx.post(server.url + "/embed", json={"inputs": unique}).status_code == 200
    assert _metric(server, "e5np_cache_bytes") <= CACHE_MB * 2**20
    assert _metric(server, "e5np_cache_evictions_total") > 0
    assert httpx.get(server.url + "/info").json()["cache_mb"] == CACHE_MB
