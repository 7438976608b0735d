"""The public API: inputs, prefixes, sentence-transformers' names, and errors."""

import os
import subprocess
import sys

import numpy as np
import pytest

from e5np import E5Model, ModelNotFoundError


@pytest.fixture(scope="module")
def model(tiny_folder):
    return E5Model(tiny_folder)


def test_shapes_and_dtype(model):
    out = model.encode(["one", "two", "three"])
    assert out.shape == (3, model.hidden_size) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-6)
    assert model.encode("one").shape == (model.hidden_size,)


def test_empty_list(model):
    out = model.encode([])
    assert out.shape == (0, model.hidden_size) and out.dtype == np.float32


def test_non_string_item_names_its_index(model):
    with pytest.raises(TypeError, match=r"texts\[2\] is int"):
        model.encode(["a", "b", 3])
    with pytest.raises(TypeError, match="texts must be"):
        model.encode(5)


def test_empty_string_embeds(model):
    out = model.encode(["", "  "])
    assert np.isfinite(out).all() and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-6)


def test_prefixes_added_once(model):
    q = model.encode_queries(["summit define", "query: summit define"])
    assert np.array_equal(q, model.encode(["query: summit define"] * 2))
    p = model.encode_passages(["text", "passage: text"])
    assert np.array_equal(p, model.encode(["passage: text"] * 2))


def test_sentence_transformers_keywords(model):
    texts = ["query: a", "passage: b"]
    base = model.encode(texts, batch_size=2)
    assert np.array_equal(model.encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                       show_progress_bar=False, batch_size=2), base)
    raw = model.encode(texts, normalize_embeddings=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1)
    assert np.allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), base, atol=1e-7)
    assert np.array_equal(model.encode(["a"], prompt="query: "), model.encode(["query: a"]))
    with pytest.raises(TypeError, match="unsupported keyword"):
        model.encode(texts, device="cuda")


def test_batch_caps_below_one_are_refused(model):
    with pytest.raises(ValueError, match="batch_size must be at least 1, not 0"):
        model.encode(["a"], batch_size=0)
    with pytest.raises(ValueError, match="max_batch_tokens must be at least 1, not 0"):
        model.encode(["a"], max_batch_tokens=0)
    with pytest.raises(ValueError, match="max_batch_tokens must be at least 1, not -5"):
        E5Model(model.folder, max_batch_tokens=-5)


def test_progress_bar(model, capsys):
    model.encode(["a", "b"], show_progress_bar=True)
    assert "2/2" in capsys.readouterr().err


def test_similarity(model):
    a, b = model.encode(["x", "y"]), model.encode(["z"])
    assert np.allclose(model.similarity(a, b), a @ b.T, atol=1e-6)
    assert np.allclose(model.similarity(a * 3, b), a @ b.T, atol=1e-6)


def test_forward_layers_and_embeddings(model):
    ids = np.array([[101, 2000, 102, 0], [101, 2001, 2002, 102]])
    mask = (ids != 0).astype(np.int64)
    out = model.forward(ids, mask)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    assert out.hidden_states[0].shape == (2, 4, model.hidden_size)
    assert not out.hidden_states[-1][0, 3].any()  # padding is not computed
    last = out.hidden_states[-1].astype(np.float64)
    pooled = (last * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    assert np.allclose(out.embeddings, pooled / np.linalg.norm(pooled, axis=1, keepdims=True), atol=1e-6)
    with pytest.raises(ValueError, match="input_ids must lie"):
        model.forward(np.array([[101, 99999999]]))


def test_sentence_transformers_snippet_runs_unchanged(model):
    """The model card's sentence-transformers code, with E5Model in place of SentenceTransformer."""
    input_texts = ["query: how much protein should a female eat", "passage: As a general guideline..."]
    embeddings = model.encode(input_texts, normalize_embeddings=True)
    assert embeddings.shape == (2, model.hidden_size)


def test_offline_and_not_cached_names_model_and_cache(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    code = "from e5np import E5Model; E5Model.from_pretrained('intfloat/e5-large')"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "ModelNotFoundError" in result.stderr and "'intfloat/e5-large'" in result.stderr
    assert str(tmp_path) in result.stderr and "HF_HUB_OFFLINE=1" in result.stderr
    assert "model_card_example.py" in result.stderr and "[demo]" in result.stderr and "folder" in result.stderr


def test_missing_local_folder():
    with pytest.raises(ModelNotFoundError, match="no such model folder"):
        E5Model.from_pretrained("./no/such/folder")


def test_bad_texts_are_named(model):
    with pytest.raises(ValueError, match=r"texts\[1\] is not valid Unicode: lone surrogate '\\ud800' at character 0"):
        model.encode(["fine", "\ud800 lone"])
    with pytest.raises(TypeError, match="texts is bytes: decode it to str first"):
        model.encode(b"hello")
    with pytest.raises(TypeError, match=r"texts\[0\] is bytes, not str: decode it"):
        model.encode([b"hello"])
    with pytest.raises(TypeError, match="texts is a dict"):
        model.encode({"a": 1})


def test_tokenize_then_encode_tokens_is_encode(model):
    texts = ["one", "a somewhat longer second text", ""]
    tokens = model.tokenize(texts, prefix="query: ")
    assert np.array_equal(model.encode_tokens(tokens.ids), model.encode(texts, prefix="query: "))
    with pytest.raises(ValueError, match=r"ids\[0\] has 0 tokens"):
        model.encode_tokens([np.zeros(0, np.int32)])
