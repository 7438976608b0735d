"""Tokenization: the same ids as HF's tokenizer, truncation at the model's limit, reported."""

import json
import shutil

import pytest
from transformers import AutoTokenizer

import hf_reference
from e5np import E5Model
from e5np.engine.tokenization import ModelTokenizer, resolve_max_length
from texts import PARITY_TEXTS


@pytest.mark.parametrize("max_length", [512, 256, 16])
def test_ids_equal_hf_tokenizer(minilm_folder, max_length):
    ours = ModelTokenizer.from_folder(minilm_folder, 512, max_length).tokenize(PARITY_TEXTS)
    theirs = hf_reference.tokenize(minilm_folder, PARITY_TEXTS, max_length)
    for i, ids in enumerate(ours.ids):
        n = int(theirs["attention_mask"][i].sum())
        assert ids.tolist() == theirs["input_ids"][i, :n].tolist(), f"text {i}: {PARITY_TEXTS[i][:40]!r}"
        assert ids[0] == 101 and ids[-1] == 102  # [CLS] ... [SEP]
    full_lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(str(minilm_folder))(PARITY_TEXTS)["input_ids"]]
    assert ours.truncated == [i for i, n in enumerate(full_lengths) if n > max_length]
    assert ours.truncated, "the texts must include one over the limit"


def test_vocab_txt_fallback_matches_tokenizer_json(minilm_folder, tmp_path):
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(minilm_folder / name, tmp_path / name)
    fallback = ModelTokenizer.from_folder(tmp_path, 512, 128).tokenize(PARITY_TEXTS)
    fast = ModelTokenizer.from_folder(minilm_folder, 512, 128).tokenize(PARITY_TEXTS)
    assert [a.tolist() for a in fallback.ids] == [b.tolist() for b in fast.ids]


def test_max_length_sources(minilm_folder, tmp_path):
    assert resolve_max_length(minilm_folder, 512, None) == 256  # sentence_bert_config.json
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 1000000000000000019884624838656}))
    assert resolve_max_length(tmp_path, 512, None) == 512       # "no limit" sentinel -> position table
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 128}))
    assert resolve_max_length(tmp_path, 512, None) == 128
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 1024}))
    assert resolve_max_length(tmp_path, 512, None) == 512       # never above max_position_embeddings
    assert resolve_max_length(tmp_path, 512, 300) == 300
    with pytest.raises(ValueError, match="max_length=600"):
        resolve_max_length(tmp_path, 512, 600)


def test_truncation_is_reported_and_logged(tiny_folder, caplog):
    model = E5Model(tiny_folder, max_length=8)
    out = model.encode(["short", "this text has far more than eight tokens in it", "also short"])
    assert out.truncated == [1] and out.num_truncated == 1
    assert "1 of 3 texts were longer than 8 tokens" in caplog.text
    assert (out @ out.T).truncated is None  # derived arrays carry no record
