"""Config and checkpoint loading: what loads, and what is refused with a message naming the problem."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from e5np import E5Model, ModelFileError, UnsupportedModelError
from e5np.engine import word_rows
from e5np.engine.checkpoint import read_tensors
from e5np.engine.config import BertConfig
from e5np.engine.word_rows import WordRows
import linux_only
from texts import PARITY_TEXTS

SHARED_CONFIGS = ["e5-large", "e5-large-v2", "e5-base-v2", "e5-small-v2"]


@pytest.fixture
def model_copy(tiny_folder, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_folder, folder)
    return folder


def rewrite(folder, change):
    """Apply ``change`` to the checkpoint's tensor dict and save it back."""
    tensors = load_file(str(folder / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(folder / "model.safetensors"))


@pytest.mark.parametrize("name", SHARED_CONFIGS)
def test_real_e5_configs_parse(name):
    from make_fixtures import SHARED
    path = SHARED / "e5-configs" / name / "config.json"
    if not path.exists():
        pytest.skip(f"{path} not present")
    c = BertConfig.from_file(path)
    raw = json.loads(path.read_text())
    assert (c.hidden_size, c.num_hidden_layers, c.intermediate_size) == \
        (raw["hidden_size"], raw["num_hidden_layers"], raw["intermediate_size"])


@pytest.mark.parametrize("model_type, architecture, named", [
    ("mpnet", "MPNetModel", "MPNet"), ("deberta-v2", "DebertaV2Model", "DeBERTa"),
    ("mistral", "MistralModel", "decoder"), ("nomic_bert", "NomicBertModel", "rotary"),
    ("t5", "T5EncoderModel", "'t5'")])
def test_other_architectures_are_refused_by_name(model_type, architecture, named):
    with pytest.raises(UnsupportedModelError, match=named) as refused:
        BertConfig.from_dict({"model_type": model_type, "architectures": [architecture]})
    assert "e5np runs BERT and XLM-RoBERTa" in str(refused.value) and architecture in str(refused.value)


@pytest.mark.parametrize("key, value", [("position_embedding_type", "relative_key"), ("position_embedding_type", "rotary"),
                                        ("hidden_act", "relu")])
def test_other_positions_and_activations_are_refused(key, value):
    raw = json.loads((__import__("make_fixtures").SHARED / "e5-configs/e5-large/config.json").read_text())
    for model_type in ("bert", "xlm-roberta"):
        with pytest.raises(UnsupportedModelError, match=key):
            BertConfig.from_dict({**raw, "model_type": model_type, key: value})


def test_xlm_roberta_config_counts_positions_from_pad():
    raw = json.loads((__import__("make_fixtures").SHARED / "e5-configs/e5-large/config.json").read_text())
    c = BertConfig.from_dict({**raw, "model_type": "xlm-roberta", "max_position_embeddings": 514, "pad_token_id": 1})
    assert c.positions_from_ids and c.position_pad_id == 1 and c.max_tokens == 512
    bert = BertConfig.from_dict(raw)
    assert bert.position_pad_id is None and bert.max_tokens == 512


def test_tanh_gelu_is_refused():
    raw = json.loads((__import__("make_fixtures").SHARED / "e5-configs/e5-large/config.json").read_text())
    with pytest.raises(UnsupportedModelError, match="hidden_act"):
        BertConfig.from_dict({**raw, "hidden_act": "gelu_new"})


def test_position_ids_and_pooler_are_ignored_and_float32_is_not_copied(tiny_folder):
    tensors = read_tensors(tiny_folder)
    assert "embeddings.position_ids" not in tensors and not any(k.startswith("pooler.") for k in tensors)
    word = tensors["embeddings.word_embeddings.weight"]
    assert isinstance(word, np.memmap) and not word.flags.owndata, "float32 tensors must be memory-mapped, not copied"


def test_bert_prefix_is_accepted(model_copy, tiny_folder):
    rewrite(model_copy, lambda t: t.update({"bert." + k: t.pop(k) for k in list(t)}))
    texts = ["a prefixed checkpoint"]
    assert np.array_equal(E5Model(model_copy).encode(texts), E5Model(tiny_folder).encode(texts))


@pytest.mark.parametrize("dtype", [np.float16, "bfloat16"])
def test_half_precision_checkpoints_are_upcast(model_copy, tiny_folder, dtype):
    def to_half(t):
        for k, v in t.items():
            if v.dtype == np.float32:
                t[k] = v.astype(np.float16) if dtype == np.float16 else v
    rewrite(model_copy, to_half)
    if dtype == "bfloat16":  # numpy has no bfloat16: write it with torch
        import torch
        from safetensors.torch import load_file as tload, save_file as tsave
        t = tload(str(model_copy / "model.safetensors"))
        tsave({k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in t.items()},
              str(model_copy / "model.safetensors"))
    half, full = E5Model(model_copy).encode(["half"]), E5Model(tiny_folder).encode(["half"])
    assert half.dtype == np.float32
    assert (half * full).sum() > 0.99  # same model, weights rounded to 16 bits


def test_sharded_checkpoint(model_copy, tiny_folder):
    tensors = load_file(str(model_copy / "model.safetensors"))
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for file, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, str(model_copy / file))
    (model_copy / "model.safetensors").unlink()
    weight_map = {k: file for file, keys in shards.items() for k in keys}
    (model_copy / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    assert np.array_equal(E5Model(model_copy).encode(["sharded"]), E5Model(tiny_folder).encode(["sharded"]))


def test_missing_tensor_is_named(model_copy):
    rewrite(model_copy, lambda t: t.pop("encoder.layer.1.output.dense.bias"))
    with pytest.raises(ModelFileError, match=r"'encoder.layer.1.output.dense.bias' is missing"):
        E5Model(model_copy)


def test_wrong_shape_is_named(model_copy):
    rewrite(model_copy, lambda t: t.update({"encoder.layer.0.intermediate.dense.weight": np.zeros((3, 3), np.float32)}))
    with pytest.raises(ModelFileError, match=r"'encoder.layer.0.intermediate.dense.weight' has shape \(3, 3\)"):
        E5Model(model_copy)


def test_truncated_file_is_named(model_copy):
    path = model_copy / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(ModelFileError, match="model.safetensors: not a readable safetensors file"):
        E5Model(model_copy)


def test_corrupt_header_is_named(model_copy):
    path = model_copy / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[8:20] = b"not json!!!!"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="model.safetensors"):
        E5Model(model_copy)


def test_missing_weights_file(model_copy):
    (model_copy / "model.safetensors").unlink()
    with pytest.raises(ModelFileError, match="no model.safetensors"):
        E5Model(model_copy)


def test_missing_config(model_copy):
    (model_copy / "config.json").unlink()
    with pytest.raises(ModelFileError, match="config.json"):
        E5Model(model_copy)


def test_word_rows_read_from_the_file_are_the_tables(tiny_folder):
    table = read_tensors(tiny_folder)["embeddings.word_embeddings.weight"]
    vocab = table.shape[0]
    ids = np.array([5, 0, vocab - 1, 5, 17, 0, 3], np.int32)  # repeats and both ends
    for from_file in (True, False):
        word = WordRows(table, read_from_file=from_file)
        rows, index = word.rows_for(ids)
        assert word.reads_from_file == from_file
        np.testing.assert_array_equal(rows[index], np.asarray(table)[ids])
        if from_file:
            assert rows.shape[0] == 5, "one row per distinct id"
        with pytest.raises(ValueError, match=f"token id {vocab} is outside"):
            word.rows_for(np.array([1, vocab], np.int32))


RSS_OF_FILE = """
import sys, numpy as np
from pathlib import Path
from tokenizers import Tokenizer
from e5np import E5Model
from e5np.engine import word_rows
word_rows.READ_FROM_FILE_ABOVE = 0 if sys.argv[2] == "file" else 2**62
folder = Path(sys.argv[1])
model = E5Model(folder)
words = sorted(w for w in Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab() if w.isalpha())
picked = np.random.default_rng(0).permutation(words)[:4000].tolist()
model.encode([" ".join(picked[i:i + 100]) for i in range(0, len(picked), 100)])
rss, path = 0, None
for line in open("/proc/self/smaps"):
    fields = line.split()
    if not fields[0].endswith(":"):  # a mapping's header: address perms offset dev inode [path]
        path = fields[5] if len(fields) > 5 else None
    elif fields[0] == "Rss:" and path == str(folder / "model.safetensors"):
        rss += int(fields[1])
print(model.weights.embeddings.word.reads_from_file, rss)
"""


@linux_only.proc_smaps
def test_word_rows_from_the_file_keep_the_table_out_of_rss(minilm_folder):
    """After embedding texts of 4,000 distinct words, the checkpoint's mapped pages in RSS: read by
    rows, only the small tensors' pages; mapped, most of the table (fault-around)."""
    measured = {}
    for mode in ("file", "mapped"):
        out = subprocess.run([sys.executable, "-c", RSS_OF_FILE, str(minilm_folder), mode],
                             capture_output=True, text=True, check=True).stdout.split()
        assert out[0] == str(mode == "file")
        measured[mode] = int(out[1])  # KiB
    assert measured["file"] < 2048 and measured["mapped"] > 10 * 1024, measured


def test_embeddings_are_the_same_with_word_rows_read_from_the_file(minilm_folder, monkeypatch):
    texts = [t for t in PARITY_TEXTS if t.strip()]
    mapped = E5Model(minilm_folder)
    monkeypatch.setattr(word_rows, "READ_FROM_FILE_ABOVE", 0)
    from_file = E5Model(minilm_folder)
    assert from_file.weights.embeddings.word.reads_from_file and not mapped.weights.embeddings.word.reads_from_file
    np.testing.assert_array_equal(from_file.encode(texts), mapped.encode(texts))
