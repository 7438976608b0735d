"""``e5np serve`` under traffic an attacker would send (issue #29), loopback only, bounded in count
and time: generated garbage on every route, JSON nested past any parser's stack, integers past
Python's digit limit, bodies that trickle in or stop halfway. Never a 500, never a stuck task."""

import json
import re
import socket
import time

import httpx
import numpy as np
import pytest

from serving import RunningServer

POST_ROUTES = ["/v1/embeddings", "/embeddings", "/embed", "/similarity", "/tokenize", "/decode", "/embed_all"]
GET_ROUTES = ["/health", "/info", "/metrics", "/openapi.json"]
BODY_TIMEOUT = HEADER_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def server(minilm_folder):
    running = RunningServer("--model", str(minilm_folder), "--max-length", "64", "--body-timeout", str(BODY_TIMEOUT),
                            "--header-timeout", str(HEADER_TIMEOUT))
    yield running
    running.stop()


def _random_json(rng, depth=0):
    kind = rng.integers(0, 8 if depth < 4 else 5)
    if kind == 0:
        return int(rng.integers(-2**40, 2**40))
    if kind == 1:
        return float(rng.normal() * 10.0 ** rng.integers(-5, 40))
    if kind == 2:
        return "".join(chr(int(c)) for c in rng.integers(1, 0x2FFF, rng.integers(0, 12)))
    if kind == 3:
        return [None, True, False][rng.integers(0, 3)]
    if kind == 4:
        return ""
    if kind in (5, 6):
        return [_random_json(rng, depth + 1) for _ in range(rng.integers(0, 4))]
    keys = ["input", "inputs", "model", "dimensions", "encoding_format", "normalize", "truncate", "prompt_name",
            "input_type", "source_sentence", "sentences", "x"]
    return {keys[rng.integers(0, len(keys))]: _random_json(rng, depth + 1) for _ in range(rng.integers(0, 4))}


def hostile_bodies(count=240, seed=29):
    """Seeded garbage: random bytes, random JSON values, valid requests cut short, deep nesting,
    huge numbers, bad UTF-8."""
    rng = np.random.default_rng(seed)
    valid = [b'{"input": ["hello", "world"]}', b'{"inputs": "hello"}',
             b'{"inputs": {"source_sentence": "a", "sentences": ["b", "c"]}}']
    bodies = [b"[" * 1500 + b"]" * 1500, b'{"input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
              b'{"input": ' * 3000, b'{"inputs": ' + b"9" * 5000 + b"}", b'{"input": 1e999999}', b"\xff\xfe\xfa",
              b'{"input": "\xed\xa0\x80"}', b"", b"null", b'"just a string"', b"{}" * 3,
              b'{"input": "nul \x00 byte"}', b'{"inputs": "\\u0000"}', b'{"inputs": ["\\udc00", "\\ud83d"]}',
              b'{"ids": [[1, 2], [3, "4"]]}', b'{"ids": [' + b"1," * 5000 + b'1]}', b'{"inputs": {"source_sentence": 1}}']
    while len(bodies) < count:
        kind = rng.integers(0, 4)
        if kind == 0:
            bodies.append(rng.integers(0, 256, rng.integers(1, 200), dtype=np.uint8).tobytes())
        elif kind == 1:
            bodies.append(json.dumps(_random_json(rng)).encode())
        elif kind == 2:
            body = valid[rng.integers(0, len(valid))]
            bodies.append(body[:rng.integers(1, len(body))])
        else:
            bodies.append(json.dumps({["input", "inputs"][rng.integers(0, 2)]: _random_json(rng)}).encode())
    return bodies


CONTENT_TYPES = ["application/json", "text/plain", None, "multipart/form-data; boundary=x", "application/json; charset=latin-1"]


def test_garbage_on_every_route_is_refused_never_a_500(server):
    statuses = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i, body in enumerate(hostile_bodies()):
            route = POST_ROUTES[i % len(POST_ROUTES)]
            kind = CONTENT_TYPES[(i // len(POST_ROUTES)) % len(CONTENT_TYPES)]
            reply = client.post(route, content=body, headers={"content-type": kind} if kind else {})
            statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
            assert reply.status_code < 500, f"{route} answered {reply.status_code} to {body[:80]!r}: {reply.text[:300]}"
            assert reply.headers["content-type"].startswith("application/json")
        for route in GET_ROUTES:  # the other methods, and bodies where none belongs
            assert client.get(route, params={"x": "\x00"}).status_code == 200
            assert client.request("GET", route, content=b"\xff" * 100).status_code == 200
            wrong = client.put(route, content=b"{}")
            assert wrong.status_code == 405 and "error" in wrong.json()
        assert client.get("/embed").status_code == 405
        assert client.get("/health").status_code == 200
    assert set(statuses) <= {200, 400, 413, 422}, statuses
    assert statuses.get(400, 0) > 0 and statuses.get(422, 0) > 0  # both kinds of refusal were met
    metrics = httpx.get(server.url + "/metrics").text
    assert 'status="500"' not in metrics, "an internal error was counted"  # (503s: /health while it loaded)


@pytest.mark.parametrize("route", POST_ROUTES)
def test_not_json_is_400_and_wrong_types_422_as_tei(server, route):
    deep = httpx.post(server.url + route, content=b"[" * 100_000 + b"]" * 100_000)
    assert deep.status_code == 400 and "nested too deeply" in json.dumps(deep.json()), deep.text
    digits = httpx.post(server.url + route, content=b'{"input": ' + b"1" * 5000 + b"}")
    assert digits.status_code == 400 and "not valid JSON" in json.dumps(digits.json()), digits.text
    assert httpx.post(server.url + route, content=b"{not json").status_code == 400
    field = "input" if "embeddings" in route else "inputs"
    wrong = httpx.post(server.url + route, json={field: [1.5, {"a": 1}]})
    assert wrong.status_code == (400 if "embeddings" in route else 422), wrong.text


def _raw_request(server, body_declared: int) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"POST /embed HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
                 f"content-length: {body_declared}\r\n\r\n".encode())
    return sock


def test_a_trickled_body_gets_408_and_others_are_served_meanwhile(server):
    sock = _raw_request(server, 200)
    started = time.monotonic()
    try:
        for byte in b'{"inputs": "slow':
            sock.sendall(bytes([byte]))
            if httpx.post(server.url + "/embed", json={"inputs": "fast"}, timeout=10).status_code != 200:
                pytest.fail("another client was not served while one trickled its body")
            time.sleep(0.1)
            sock.settimeout(0.01)
            try:
                reply = sock.recv(4096)
                break
            except TimeoutError:
                continue
        else:
            sock.settimeout(10)
            reply = sock.recv(4096)
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"--body-timeout" in reply
    assert time.monotonic() - started < BODY_TIMEOUT + 5


@pytest.mark.parametrize("sent", [b"", b"POST /embed HTTP/1.1\r\nhost: x\r\n"], ids=["nothing", "half headers"])
def test_a_connection_without_headers_is_closed_and_frees_its_slot(server, sent):
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=HEADER_TIMEOUT + 10)
    started = time.monotonic()
    try:
        sock.sendall(sent)
        assert httpx.post(server.url + "/embed", json={"inputs": "meanwhile"}).status_code == 200
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    finally:
        sock.close()
    assert time.monotonic() - started < HEADER_TIMEOUT + 5, "the connection was not closed in time"
    assert reply.startswith(b"HTTP/1.1 408") and b"--header-timeout" in reply, reply[:200]


def test_keep_alive_clients_are_not_cut(server):
    with httpx.Client(base_url=server.url) as client:
        for _ in range(3):
            assert client.post("/embed", json={"inputs": "again"}).status_code == 200
            time.sleep(HEADER_TIMEOUT * 0.6)


def test_a_client_gone_halfway_is_no_error(server):
    def count(status):
        metrics = httpx.get(server.url + "/metrics").text
        return sum(float(v) for v in re.findall(rf'te_request_count\{{[^}}]*status="{status}"[^}}]*\}} (\S+)', metrics))

    before_500, before_499 = count(500), count(499)
    sock = _raw_request(server, 500)
    sock.sendall(b'{"inputs": "half')
    sock.close()
    deadline = time.monotonic() + 10
    while count(499) == before_499 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert count(499) == before_499 + 1 and count(500) == before_500
    assert httpx.post(server.url + "/embed", json={"inputs": "still fine"}).status_code == 200
