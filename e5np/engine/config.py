"""The model's sizes, read from ``config.json``: nothing about e5-small/base/large is hard-coded.

Two encoder families share one forward pass: BERT (e5-*, bge, gte, MiniLM, multilingual-e5-small)
and XLM-RoBERTa (multilingual-e5-base/large). They differ only in where positions start: see
``positions_from_ids``. Everything else is refused by name (``_UNSUPPORTED``).
"""

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelFileError, UnsupportedModelError

RUNS = "e5np runs BERT and XLM-RoBERTa encoders (e5 v1/v2, multilingual-e5, bge, gte, MiniLM)"
_FAMILIES = {"bert": False, "xlm-roberta": True}  # model_type -> positions_from_ids
_UNSUPPORTED = {
    "mpnet": "MPNet (relative position bias, e.g. all-mpnet-base-v2)",
    "deberta": "DeBERTa (disentangled relative attention)",
    "deberta-v2": "DeBERTa-v2/v3 (disentangled relative attention)",
    "distilbert": "DistilBERT (other weight names, no token types)",
    "nomic_bert": "nomic-bert (rotary positions, SwiGLU)",
    "new": "gte-v1.5 'new' architecture (rotary positions)",
    "modernbert": "ModernBERT (rotary positions, GeGLU, local attention)",
    "jina_bert": "jina-bert (ALiBi positions)",
    **{d: f"{d}, a decoder (E5-mistral and other LLM embedders: rotary positions, RMSNorm, last-token pooling)"
       for d in ("mistral", "llama", "qwen2", "qwen3", "gemma", "gemma2", "phi3")},
}


@dataclass(frozen=True)
class BertConfig:
    hidden_size: int              # H: 384 (small), 768 (base), 1024 (large)
    num_hidden_layers: int        # 6, 12 or 24
    num_attention_heads: int      # H / head size (head size 32 or 64)
    intermediate_size: int        # FFN width, 4H
    max_position_embeddings: int  # rows of the position table: 512 (BERT), 514 (XLM-R)
    vocab_size: int
    type_vocab_size: int
    layer_norm_eps: float = 1e-12  # 1e-12 in every BERT E5 config, 1e-5 in XLM-R's
    # XLM-R (from RoBERTa): a token's position is pad_token_id + 1 + its index among the text's
    # non-<pad> tokens, and a <pad> token sits at pad_token_id (HF create_position_ids_from_input_ids);
    # BERT: a token's position is its index.
    positions_from_ids: bool = False
    pad_token_id: int = 0

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def position_pad_id(self) -> int | None:
        """The <pad> id that positions are counted around (XLM-R), or None (BERT: positions are indices)."""
        return self.pad_token_id if self.positions_from_ids else None

    @property
    def max_tokens(self) -> int:
        """The longest input, <s>/[CLS] and </s>/[SEP] included: 512 for both families."""
        if self.positions_from_ids:
            return self.max_position_embeddings - self.pad_token_id - 1
        return self.max_position_embeddings

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
        if model_type not in _FAMILIES:
            what = _UNSUPPORTED.get(model_type, f"model_type {model_type!r}")
            raise UnsupportedModelError(
                f"{source}: {what} (architectures {raw.get('architectures')}) is not supported; {RUNS}")
        checks = {
            "hidden_act": ("gelu", "only the exact erf GELU of BERT and XLM-R is implemented"),
            "position_embedding_type": ("absolute", "only absolute position embeddings are implemented"),
        }
        for key, (wanted, why) in checks.items():
            if raw.get(key, wanted) != wanted:
                raise UnsupportedModelError(f"{source}: {key} is {raw[key]!r}, {why}")
        sizes = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "max_position_embeddings", "vocab_size", "type_vocab_size"]
        missing = [f for f in sizes if f not in raw]
        if missing:
            raise ModelFileError(f"{source}: missing keys {missing}")
        positions_from_ids = _FAMILIES[model_type]
        config = cls(**{f: raw[f] for f in sizes}, layer_norm_eps=raw.get("layer_norm_eps", 1e-12),
                     positions_from_ids=positions_from_ids, pad_token_id=raw.get("pad_token_id", 1 if positions_from_ids else 0))
        if config.hidden_size % config.num_attention_heads:
            raise ModelFileError(f"{source}: hidden_size {config.hidden_size} is not a multiple of "
                                 f"num_attention_heads {config.num_attention_heads}")
        if config.max_tokens < 2:
            raise ModelFileError(f"{source}: max_position_embeddings {config.max_position_embeddings} leaves no "
                                 f"room for a text (pad_token_id {config.pad_token_id})")
        return config
