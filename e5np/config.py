"""The model's sizes, read from ``config.json``: nothing about e5-small/base/large is hard-coded."""

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelFileError, UnsupportedModelError


@dataclass(frozen=True)
class BertConfig:
    hidden_size: int              # H: 384 (small), 768 (base), 1024 (large)
    num_hidden_layers: int        # 6, 12 or 24
    num_attention_heads: int      # H / head size (head size 32 or 64)
    intermediate_size: int        # FFN width, 4H
    max_position_embeddings: int  # 512: the longest input, [CLS] and [SEP] included
    vocab_size: int
    type_vocab_size: int
    layer_norm_eps: float         # 1e-12 in every E5 config

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_file(cls, path) -> "BertConfig":
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelFileError(f"{path}: no config.json; a model folder needs config.json, model.safetensors and tokenizer files") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ModelFileError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> "BertConfig":
        model_type = raw.get("model_type")
        if model_type != "bert":
            raise UnsupportedModelError(
                f"{source}: model_type {model_type!r} (architectures {raw.get('architectures')}) is not supported; "
                "e5np runs BERT encoders (e5-small/base/large, v1 and v2). Multilingual E5 is XLM-RoBERTa and is not supported.")
        checks = {
            "hidden_act": ("gelu", "only the exact erf GELU of E5 models is implemented"),
            "position_embedding_type": ("absolute", "only absolute position embeddings are implemented"),
        }
        for key, (wanted, why) in checks.items():
            if raw.get(key, wanted) != wanted:
                raise UnsupportedModelError(f"{source}: {key} is {raw[key]!r}, {why}")
        missing = [f for f in cls.__dataclass_fields__ if f not in raw and f != "layer_norm_eps"]
        if missing:
            raise ModelFileError(f"{source}: missing keys {missing}")
        config = cls(**{f: raw.get(f, 1e-12) for f in cls.__dataclass_fields__})
        if config.hidden_size % config.num_attention_heads:
            raise ModelFileError(f"{source}: hidden_size {config.hidden_size} is not a multiple of "
                                 f"num_attention_heads {config.num_attention_heads}")
        return config
