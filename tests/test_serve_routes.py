"""TEI's token routes (``/tokenize``, ``/decode``, ``/embed_all``) and ``/openapi.json`` (issue #29),
against the model in the test process and the tokenizers package read independently."""

import httpx
import numpy as np
import pytest
from tokenizers import Tokenizer

from e5np import E5Model
from serving import RunningServer

TEXTS = ["how much protein should a female eat", "héllo wörld: €5, naïve café"]
MAX_BATCH_TOKENS = 300


@pytest.fixture(scope="module")
def model(minilm_folder):
    return E5Model(minilm_folder)


@pytest.fixture(scope="module")
def server(minilm_folder):
    running = RunningServer("--model", str(minilm_folder), "--max-batch-tokens", str(MAX_BATCH_TOKENS))
    yield running
    running.stop()


def _reference(folder) -> Tokenizer:
    """The model's tokenizer.json read by the tokenizers package alone, uncut and unpadded."""
    reference = Tokenizer.from_file(str(folder / "tokenizer.json"))
    reference.no_truncation()
    reference.no_padding()  # this file pads to 128
    return reference


def post(server, route, body):
    return httpx.post(server.url + route, json=body, timeout=60)


def test_tokenize_gives_every_token_with_its_bytes(server, minilm_folder):
    reference = _reference(minilm_folder)
    long_text = "protein " * 400  # past max_length: /tokenize does not cut
    reply = post(server, "/tokenize", {"inputs": TEXTS + [long_text]})
    assert reply.status_code == 200, reply.text
    for text, tokens in zip(TEXTS + [long_text], reply.json()):
        assert [t["id"] for t in tokens] == reference.encode(text).ids
        assert tokens[0]["special"] and tokens[-1]["special"] and tokens[0]["start"] is None
        for t in tokens[1:-1]:
            assert not t["special"] and text.encode()[t["start"]:t["stop"]].decode() == t["text"]
    plain = post(server, "/tokenize", {"inputs": TEXTS[0], "add_special_tokens": False}).json()
    assert [t["id"] for t in plain[0]] == reference.encode(TEXTS[0], add_special_tokens=False).ids
    query = post(server, "/tokenize", {"inputs": TEXTS[0], "prompt_name": "query"}).json()
    assert [t["id"] for t in query[0]] == reference.encode("query: " + TEXTS[0]).ids


def test_decode_turns_ids_back_into_text(server, minilm_folder):
    reference = _reference(minilm_folder)
    ids = [reference.encode(t).ids for t in TEXTS]
    assert post(server, "/decode", {"ids": ids}).json() == [reference.decode(i) for i in ids]
    with_special = post(server, "/decode", {"ids": ids[0], "skip_special_tokens": False}).json()
    assert with_special == [reference.decode(ids[0], skip_special_tokens=False)]
    assert with_special[0].startswith("[CLS]")


@pytest.mark.parametrize("body,status,message", [
    ({"ids": [101, 10 ** 9]}, 422, "ids[0] holds 1000000000, outside the tokenizer's"),
    ({"ids": [101, -1]}, 422, "ids[0] holds -1"),
    ({"ids": "101"}, 422, "'ids' must be"),
    ({"ids": [[101], "x"]}, 422, "'ids' must be"),
    ({"ids": [1.5]}, 422, "'ids' must be"),
    ({"ids": [101], "skip_special_tokens": "yes"}, 422, "'skip_special_tokens' must be true or false"),
    ({"inputs": "x"}, 422, "'ids' must be"),
])
def test_decode_refuses_what_is_not_ids(server, body, status, message):
    reply = post(server, "/decode", body)
    assert reply.status_code == status and message in reply.json()["error"], reply.text


def test_embed_all_is_every_token_of_the_last_layer(server, model):
    reply = post(server, "/embed_all", {"inputs": TEXTS})
    assert reply.status_code == 200, reply.text
    ids = model.tokenize(TEXTS).ids
    expected = model.token_states(ids)
    for got, want, seq in zip(reply.json(), expected, ids):
        got = np.array(got, np.float32)
        assert got.shape == (len(seq), model.hidden_size) and np.array_equal(got, want)
    # the same numbers forward() gives (HF's last_hidden_state layout), and they pool to /embed's vector
    hidden = model.forward(np.array([ids[0]]))
    assert np.array_equal(hidden.hidden_states[-1][0], expected[0])
    pooled = expected[0].astype(np.float64).mean(0)
    embed = np.array(post(server, "/embed", {"inputs": TEXTS[0]}).json()[0])
    assert np.abs(pooled / np.linalg.norm(pooled) - embed).max() < 1e-6


def test_embed_all_is_bounded_by_the_token_budget(server):
    reply = post(server, "/embed_all", {"inputs": ["protein " * 200, "fat " * 200]})
    assert reply.status_code == 413 and f"at most {MAX_BATCH_TOKENS}" in reply.json()["error"], reply.text


def test_token_states_do_not_depend_on_the_batch(model):
    ids = model.tokenize(TEXTS + ["a third, longer text " * 20]).ids
    together = model.token_states(ids, batch_size=3)
    for i, seq in enumerate(ids):
        assert np.array_equal(model.token_states([seq])[0], together[i])


def test_openapi_describes_every_route_and_its_examples_are_accepted(server):
    from e5np.serve.app import create_app

    doc = httpx.get(server.url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    routes = {r.path for r in create_app(_NoBatcher(), _settings()).routes}
    assert set(doc["paths"]) == routes
    for path, operations in doc["paths"].items():
        if "post" in operations:
            example = operations["post"]["requestBody"]["content"]["application/json"]["example"]
            reply = post(server, path, example)
            assert reply.status_code == 200, f"{path}: its own example answered {reply.status_code}: {reply.text}"


class _NoBatcher:
    queued_texts = 0
    observe = None


def _settings():
    from e5np.serve import ServeSettings
    return ServeSettings()
