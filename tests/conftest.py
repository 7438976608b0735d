"""Shared fixtures: the test models (built into the fixtures cache when missing) and HF references."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import make_fixtures  # noqa: E402

# Small random BERTs with head sizes other than the fixtures' (MiniLM: 32, e5-large: 64).
TINY_CONFIGS = {
    "tiny-head16": dict(hidden_size=64, num_attention_heads=4, num_hidden_layers=3, intermediate_size=256),
    "tiny-head48": dict(hidden_size=96, num_attention_heads=2, num_hidden_layers=2, intermediate_size=384),
}
BERT_DEFAULTS = dict(model_type="bert", architectures=["BertModel"], vocab_size=30522, max_position_embeddings=512,
                     type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu", position_embedding_type="absolute",
                     pad_token_id=0)


def tiny_bert(name: str) -> Path:
    folder = make_fixtures.fixtures_dir() / name
    if not (folder / "model.safetensors").exists():
        make_fixtures.random_bert(folder, {**BERT_DEFAULTS, **TINY_CONFIGS[name]}, seed=len(name))
    return folder


def model_folder(name: str) -> Path:
    if name in make_fixtures.FIXTURES:
        return make_fixtures.FIXTURES[name]()
    return tiny_bert(name)


@pytest.fixture(scope="session")
def minilm_folder() -> Path:
    return make_fixtures.minilm()


@pytest.fixture(scope="session")
def tiny_folder() -> Path:
    return tiny_bert("tiny-head16")
