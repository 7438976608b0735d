"""Deterministic benchmark workloads, made from the tokenizer's own vocabulary (no downloads).

- passages: 256 texts whose token counts spread like MS MARCO passages (log-normal, mean about 80,
  clipped to 20..200);
- queries: 256 texts of 8 to 20 tokens;
- long: 32 texts of at least 512 tokens (cut to 512 by every system).
Counts include [CLS] and [SEP]. Words are whole-word vocabulary entries, so each is one token.
"""

import numpy as np
from tokenizers import Tokenizer

WORKLOADS = ("passages", "queries", "long")


def _words(tokenizer_json) -> list[str]:
    vocab = Tokenizer.from_file(str(tokenizer_json)).get_vocab()
    return sorted(w for w in vocab if w.isalpha() and w.isascii() and len(w) > 2 and not w.startswith("##"))


def token_lengths(name: str, rng) -> np.ndarray:
    if name == "passages":
        return np.clip(np.round(rng.lognormal(np.log(72), 0.45, 256)), 20, 200).astype(int)
    if name == "queries":
        return rng.integers(8, 21, 256)
    if name == "long":
        return np.full(32, 600)
    raise ValueError(f"unknown workload {name!r}; choose from {WORKLOADS}")


def make_workload(name: str, tokenizer_json, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    words = _words(tokenizer_json)
    return [" ".join(rng.choice(words, n - 2)) for n in token_lengths(name, rng)]
