"""The Hugging Face reference: transformers' BertModel run the way the E5 model card runs it."""

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, BertModel


@dataclass(frozen=True)
class Reference:
    input_ids: np.ndarray           # [n, L]
    attention_mask: np.ndarray      # [n, L]
    hidden_states: list[np.ndarray]  # embeddings + every layer, [n, L, H]
    embeddings: np.ndarray          # [n, H] average_pool + F.normalize, as float64


def average_pool(last_hidden_states, attention_mask):
    """The E5 model card's pooling, verbatim."""
    last_hidden = last_hidden_states.masked_fill(~attention_mask[..., None].bool(), 0.0)
    return last_hidden.sum(dim=1) / attention_mask.sum(dim=1)[..., None]


def tokenize(folder: Path, texts, max_length: int):
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    return tokenizer(list(texts), max_length=max_length, padding=True, truncation=True, return_tensors="pt")


@functools.lru_cache(maxsize=2)
def load(folder: Path, dtype: torch.dtype, attn: str) -> BertModel:
    return BertModel.from_pretrained(str(folder), attn_implementation=attn, dtype=dtype).eval()


@functools.lru_cache(maxsize=16)
def run(folder: Path, texts: tuple, max_length: int, dtype=torch.float32, attn="eager") -> Reference:
    torch.set_num_threads(2)
    batch = tokenize(folder, texts, max_length)
    model = load(folder, dtype, attn)
    with torch.inference_mode():
        out = model(**batch, output_hidden_states=True)
        embeddings = F.normalize(average_pool(out.last_hidden_state, batch["attention_mask"]), p=2, dim=1)
    return Reference(batch["input_ids"].numpy(), batch["attention_mask"].numpy(),
                     [h.float().numpy() for h in out.hidden_states], embeddings.double().numpy())
