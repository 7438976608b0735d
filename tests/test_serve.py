"""``e5np serve`` as its clients meet it: a real uvicorn server in a subprocess, the official
``openai`` client and plain HTTP (httpx). Every embedding must equal ``model.encode`` of the text
alone, bit for bit, whatever batch the server put it in."""

import base64
import concurrent.futures
import json
import re
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

from e5np import E5Model  # noqa: E402
from serving import RunningServer  # noqa: E402
from texts import HARD_CASES, LONG, MODEL_CARD_INPUTS, MODEL_CARD_PASSAGES  # noqa: E402

TEXTS = MODEL_CARD_INPUTS + [t for t in HARD_CASES if t]


@pytest.fixture(scope="module")
def model(minilm_folder):
    return E5Model(minilm_folder)


@pytest.fixture(scope="module")
def server(minilm_folder):
    running = RunningServer("--model", str(minilm_folder), "--max-client-batch-size", "64", "--max-queue", "4096",
                            "--payload-limit", "200000")
    yield running
    code, log = running.stop()
    assert code == 0, log


def client(server) -> "openai.OpenAI":
    return openai.OpenAI(base_url=server.url + "/v1", api_key="anything", max_retries=0)


def test_openai_client_base64_default_equals_encode(server, model):
    reply = client(server).embeddings.create(model="e5", input=TEXTS)  # the client asks for base64 by default
    got = np.array([d.embedding for d in reply.data], np.float32)
    assert np.array_equal(got, model.encode(TEXTS))
    assert [d.index for d in reply.data] == list(range(len(TEXTS)))
    assert reply.usage.prompt_tokens == reply.usage.total_tokens == sum(len(i) for i in model.tokenize(TEXTS).ids)
    assert reply.model == "all-MiniLM-L6-v2"


def test_openai_client_float_and_single_string(server, model):
    reply = client(server).embeddings.create(model="e5", input="query: summit define", encoding_format="float")
    assert np.array_equal(np.array(reply.data[0].embedding, np.float32), model.encode("query: summit define"))


def test_base64_is_little_endian_float32(server, model):
    reply = httpx.post(server.url + "/v1/embeddings", json={"input": ["hi"], "encoding_format": "base64"}).json()
    raw = base64.b64decode(reply["data"][0]["embedding"])
    assert np.array_equal(np.frombuffer(raw, "<f4"), model.encode("hi"))


def test_input_type_adds_prefix_once(server, model):
    reply = httpx.post(server.url + "/v1/embeddings", json={
        "input": ["summit define", "query: summit define"], "input_type": "query", "encoding_format": "float"}).json()
    got = np.array([d["embedding"] for d in reply["data"]], np.float32)
    expected = model.encode_queries(["summit define"])[0]
    assert np.array_equal(got[0], expected) and np.array_equal(got[1], expected)


def test_tei_embed_routes(server, model):
    got = np.array(httpx.post(server.url + "/embed", json={"inputs": TEXTS}).json(), np.float32)
    assert np.array_equal(got, model.encode(TEXTS))
    raw = np.array(httpx.post(server.url + "/embed", json={"inputs": "hi", "normalize": False}).json(), np.float32)
    assert np.array_equal(raw[0], model.encode("hi", normalize=False))
    passage = np.array(httpx.post(server.url + "/embed", json={"inputs": ["x"], "prompt_name": "passage"}).json(),
                       np.float32)
    assert np.array_equal(passage[0], model.encode_passages(["x"])[0])


def test_dimensions_are_the_first_values_normalized_again(server, model):
    full = model.encode("hi").astype(np.float64)
    expected = full[:16] / np.linalg.norm(full[:16])
    for route, body in (("/embed", {"inputs": "hi", "dimensions": 16}),
                        ("/v1/embeddings", {"input": "hi", "dimensions": 16, "encoding_format": "float"})):
        reply = httpx.post(server.url + route, json=body).json()
        got = np.array(reply[0] if route == "/embed" else reply["data"][0]["embedding"], np.float32)
        assert got.shape == (16,) and np.array_equal(got, expected.astype(np.float32))


def test_similarity(server, model):
    sentences = ["passage: " + p for p in MODEL_CARD_PASSAGES]
    scores = httpx.post(server.url + "/similarity", json={
        "inputs": {"source_sentence": MODEL_CARD_INPUTS[0], "sentences": sentences}}).json()
    vectors = model.encode([MODEL_CARD_INPUTS[0]] + sentences).astype(np.float64)
    assert np.allclose(scores, vectors[1:] @ vectors[0], rtol=0, atol=1e-12)


def test_64_concurrent_clients_each_get_their_offline_embeddings(server, model):
    rng = np.random.default_rng(3)
    words = LONG.split()
    pool = [" ".join(words[:n]) for n in rng.integers(1, 400, 200)] + TEXTS
    requests = [[pool[i] for i in rng.integers(0, len(pool), size)] for size in rng.choice([1, 1, 1, 3, 16, 64], 64)]
    expected = {t: v for t, v in zip(pool, model.encode(pool))}
    barrier = threading.Barrier(64)

    def call(texts):
        with httpx.Client(timeout=120) as http:
            barrier.wait()
            route = "/embed" if len(texts) % 2 else "/v1/embeddings"
            body = {"inputs": texts} if route == "/embed" else {"input": texts, "encoding_format": "base64"}
            reply = http.post(server.url + route, json=body)
            assert reply.status_code == 200, reply.text
            if route == "/embed":
                return np.array(reply.json(), np.float32)
            return np.stack([np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in reply.json()["data"]])

    with concurrent.futures.ThreadPoolExecutor(64) as executor:
        replies = list(executor.map(call, requests))
    for i, (texts, got) in enumerate(zip(requests, replies)):
        differing = [j for j, t in enumerate(texts) if not np.array_equal(got[j], expected[t])]
        assert not differing, f"request {i}: texts {differing} differ from their offline embeddings"
    metrics = httpx.get(server.url + "/metrics").text
    sizes = re.search(r"te_batch_next_size_count (\d+)", metrics)
    assert sizes and int(sizes.group(1)) < sum(len(r) for r in requests), "no two texts ever shared a batch"


BAD_OPENAI = [
    (b"{not json", "not valid JSON", None),
    (b'["input"]', "must be a JSON object", None),
    (b'{"model": "e5"}', "'input' is required", "input"),
    (b'{"input": 5}', "must be a string or a list of strings", "input"),
    (b'{"input": []}', "empty list", "input"),
    (b'{"input": ["ok", 7]}', "'input[1]' must be a string", "input[1]"),
    (b'{"input": ["ok", null]}', "'input[1]' must be a string", "input[1]"),
    (b'{"input": ["ok", "\\ud800 lone"]}', "'input[1]' is not valid Unicode", "input[1]"),
    (b'{"input": [101, 2023]}', "token ids", "input"),
    (b'{"input": [[101, 2023]]}', "token ids", "input"),
    (b'{"input": "x", "encoding_format": "int8"}', "encoding_format", "encoding_format"),
    (b'{"input": "x", "dimensions": 0}', "'dimensions' must be", "dimensions"),
    (b'{"input": "x", "dimensions": 385}', "'dimensions' must be", "dimensions"),
    (b'{"input": "x", "input_type": "document"}', "'input_type' must be", "input_type"),
]


@pytest.mark.parametrize("body,message,param", BAD_OPENAI, ids=[b.decode(errors="replace")[:40] for b, _, _ in BAD_OPENAI])
def test_openai_bad_input_is_400_naming_the_field(server, body, message, param):
    reply = httpx.post(server.url + "/v1/embeddings", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert message in error["message"] and error["param"] == param and error["type"] == "invalid_request_error"


def test_tei_errors_have_tei_shape(server):
    reply = httpx.post(server.url + "/embed", json={"inputs": ["a", {"b": 1}]})
    assert reply.status_code == 422 and reply.json() == {"error": "'inputs[1]' must be a string, not an object",
                                                         "error_type": "Validation"}
    reply = httpx.post(server.url + "/embed", json={"inputs": []})
    assert reply.status_code == 400 and reply.json()["error_type"] == "Empty"


def test_over_long_text_without_truncation_is_413_naming_it(server, model):
    reply = httpx.post(server.url + "/embed", json={"inputs": ["short", LONG], "truncate": False})
    assert reply.status_code == 413 and "text 1 is longer than the model's 256 tokens" in reply.json()["error"]
    truncated = np.array(httpx.post(server.url + "/embed", json={"inputs": [LONG]}).json(), np.float32)
    assert np.array_equal(truncated[0], model.encode(LONG))  # truncate (the default) cuts as encode does


def test_limits(server):
    reply = httpx.post(server.url + "/v1/embeddings", json={"input": ["x"] * 65})
    assert reply.status_code == 413 and "at most 64" in reply.json()["error"]["message"]
    assert httpx.post(server.url + "/embed", json={"inputs": ["x"] * 65}).status_code == 422  # as TEI
    big = json.dumps({"input": ["word " * 50_000]}).encode()
    reply = httpx.post(server.url + "/v1/embeddings", content=big)
    assert reply.status_code == 413 and "--payload-limit" in reply.json()["error"]["message"]


def test_unknown_route_is_json(server):
    reply = httpx.get(server.url + "/v1/models/nope")
    assert reply.status_code == 404 and "error" in reply.json()


def test_info_and_timing_headers(server):
    info = httpx.get(server.url + "/info").json()
    assert info["dimension"] == 384 and info["max_input_length"] == 256 and info["precision"] == "fp32"
    reply = httpx.post(server.url + "/embed", json={"inputs": "hi"})
    assert {"x-queue-time", "x-inference-time", "x-total-time"} <= set(reply.headers)


def test_api_key(minilm_folder):
    running = RunningServer("--model", str(minilm_folder), env={"E5NP_API_KEY": "s3cret"})
    try:
        body = {"input": "hi"}
        assert httpx.post(running.url + "/v1/embeddings", json=body).status_code == 401
        wrong = httpx.post(running.url + "/v1/embeddings", json=body, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
        assert httpx.post(running.url + "/embed", json={"inputs": "hi"}).json()["error_type"] == "Unauthorized"
        assert httpx.get(running.url + "/health").status_code == 200
        assert httpx.get(running.url + "/metrics").status_code == 200
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=running.url + "/v1", api_key="nope", max_retries=0).embeddings.create(
                model="e5", input="hi")
        reply = openai.OpenAI(base_url=running.url + "/v1", api_key="s3cret").embeddings.create(model="e5", input="hi")
        assert len(reply.data[0].embedding) == 384
    finally:
        assert running.stop()[0] == 0


def test_sigterm_answers_every_accepted_request_then_exits_0(minilm_folder, model):
    # a graceful timeout far above the work: this test is about losing nothing (past the timeout,
    # uvicorn cancels what is left: a loaded CI machine took over the default 30 s for 12 x 32 texts)
    running = RunningServer("--model", str(minilm_folder), "--graceful-timeout", "600")
    texts = [f"{i} " + LONG[:900] for i in range(16)]
    expected = model.encode(texts)
    replies: list = [None] * 8

    def call(k):
        replies[k] = httpx.post(running.url + "/embed", json={"inputs": texts}, timeout=120)

    threads = [threading.Thread(target=call, args=(k,)) for k in range(len(replies))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # SIGTERM once requests are accepted and waiting
        queued = re.search(r"^te_queue_size (\S+)", httpx.get(running.url + "/metrics").text, re.M)
        if queued and float(queued.group(1)) > 0:
            break
        time.sleep(0.01)
    else:
        pytest.fail("requests never queued")
    code, log = running.stop()
    for thread in threads:
        thread.join()
    assert code == 0, log
    for k, reply in enumerate(replies):
        assert reply is not None and reply.status_code == 200, f"request {k}: {reply and reply.text}\n{log}"
        assert np.array_equal(np.array(reply.json(), np.float32), expected), f"request {k} differs"


def test_port_in_use_exits_2_with_one_line(minilm_folder):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "e5np", "serve", "--model", str(minilm_folder), "--port",
                               str(port)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"e5np: error: cannot listen on 127.0.0.1:{port}: Address already in use"]


def test_model_that_cannot_load_exits_2_with_one_line(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"')
    done = subprocess.run([sys.executable, "-m", "e5np", "serve", "--model", str(tmp_path), "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "the model could not load" in errors[0] and "config.json" in errors[0], done.stderr


def test_bad_environment_variable_is_named():
    done = subprocess.run([sys.executable, "-m", "e5np", "serve"], capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, "E5NP_PORT": "eighty"})
    assert done.returncode == 2 and "$E5NP_PORT='eighty'" in done.stderr


def test_listening_socket_lets_asyncio_set_nodelay():
    """asyncio sets TCP_NODELAY on accepted sockets only when the listener's proto is TCP; without
    it every keep-alive reply waited ~45 ms for a delayed ACK (measured)."""
    from e5np.serve.server import bind

    with bind("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP


def test_a_model_with_its_own_prompts_serves_them():
    """bge's folder: [CLS] pooling, and prompt_name/input_type "query" means its instruction, not "query: "."""
    from conftest import model_folder

    folder = model_folder("bge-small-random")
    bge = E5Model(folder)
    running = RunningServer("--model", str(folder))
    try:
        tei = httpx.post(running.url + "/embed", json={"inputs": ["summit define"], "prompt_name": "query"}).json()
        openai_reply = httpx.post(running.url + "/v1/embeddings", json={
            "input": ["summit define"], "input_type": "query", "encoding_format": "float"}).json()
    finally:
        code, log = running.stop()
    expected = bge.encode_queries(["summit define"])
    assert np.array_equal(np.array(tei, np.float32), expected)
    assert np.array_equal(np.array([openai_reply["data"][0]["embedding"]], np.float32), expected)
    assert code == 0, log
