"""The Hugging Face reference: transformers' BertModel / XLMRobertaModel run the way the E5 model
card runs it (AutoModel, mean pooling, F.normalize), or with [CLS] pooling where the folder's
sentence-transformers Pooling config says cls (bge)."""

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer


@dataclass(frozen=True)
class Reference:
    input_ids: np.ndarray           # [n, L]
    attention_mask: np.ndarray      # [n, L]
    hidden_states: list[np.ndarray]  # embeddings + every layer, [n, L, H]
    embeddings: np.ndarray          # [n, H] average_pool (or [CLS]) + F.normalize, as float64


def average_pool(last_hidden_states, attention_mask):
    """The E5 model card's pooling, verbatim."""
    last_hidden = last_hidden_states.masked_fill(~attention_mask[..., None].bool(), 0.0)
    return last_hidden.sum(dim=1) / attention_mask.sum(dim=1)[..., None]


def tokenize(folder: Path, texts, max_length: int):
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    return tokenizer(list(texts), max_length=max_length, padding=True, truncation=True, return_tensors="pt")


def cls_pooled(folder: Path) -> bool:
    path = folder / "1_Pooling" / "config.json"
    config = json.loads(path.read_text()) if path.exists() else {}
    return config.get("pooling_mode") == "cls" or config.get("pooling_mode_cls_token", False)


@functools.lru_cache(maxsize=2)
def load(folder: Path, dtype: torch.dtype, attn: str):
    return AutoModel.from_pretrained(str(folder), attn_implementation=attn, dtype=dtype).eval()


CHUNK = 4  # texts per forward pass: length-sorted chunks, so short texts are not padded to 512


@functools.lru_cache(maxsize=16)
def run(folder: Path, texts: tuple, max_length: int, dtype=torch.float32, attn="eager") -> Reference:
    """The model card's forward pass, padded and masked as it does, on chunks of texts of similar
    length (each chunk padded to its own longest, as a caller batching by length would); the
    hidden states are returned in the layout of the whole batch padded to its longest, zeros at padding."""
    torch.set_num_threads(2)
    batch = tokenize(folder, texts, max_length)
    model = load(folder, dtype, attn)
    mask = batch["attention_mask"]
    lengths = mask.sum(1)
    order = torch.argsort(lengths, descending=True, stable=True)
    hidden, embeddings = None, torch.zeros(len(texts), model.config.hidden_size, dtype=torch.float64)
    with torch.inference_mode():
        for chunk in order.split(CHUNK):
            width = int(lengths[chunk].max())
            part = {k: v[chunk, :width] for k, v in batch.items()}
            out = model(**part, output_hidden_states=True)
            if hidden is None:
                hidden = [np.zeros(tuple(mask.shape) + (h.shape[-1],), np.float32) for h in out.hidden_states]
            for full, h in zip(hidden, out.hidden_states):
                full[chunk.numpy(), :width] = (h * part["attention_mask"][..., None]).float().numpy()
            pooled = out.last_hidden_state[:, 0] if cls_pooled(folder) else \
                average_pool(out.last_hidden_state, part["attention_mask"])
            embeddings[chunk] = F.normalize(pooled, p=2, dim=1).double()
    return Reference(batch["input_ids"].numpy(), mask.numpy(), hidden, embeddings.numpy())
