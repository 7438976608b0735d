"""The whole model in one screen of plain NumPy. This is the model; the rest of e5np makes it fast.

BERT and XLM-RoBERTa encoders in eval mode, as HF transformers runs them (models/bert/modeling_bert.py;
XLM-R's modeling_xlm_roberta.py is the same module tree but for its position ids), then
sentence-transformers' Pooling and Normalize. One text at a time, so there is no padding and no
attention mask. Weights are float32; every sum runs in float64 and each module's output is rounded
to float32, as e5np's kernels keep activations. No Numba, no torch:
``python -m e5np.reference_model FOLDER TEXT...`` prints each text's embedding as one JSON array.
T = the text's tokens, H = hidden size, I = FFN size, n = heads, d = H / n.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np

from .engine.checkpoint import read_tensors  # {HF name without "bert."/"roberta.": float32 array}
from .engine.config import BertConfig
from .engine.sentence_modules import SentenceModules  # pooling mode, Normalize, prompts
from .engine.tokenization import ModelTokenizer  # tokenizer.json, cut at the model's max_length
from .errors import E5npError

_erf = np.frompyfunc(math.erf, 1, 1)  # NumPy has no erf; math.erf is exact to float64


def linear(x, w, name):                     # nn.Linear: x W^T + b                       [T, in] -> [T, out]
    return (x.astype(np.float64) @ w[name + ".weight"].T.astype(np.float64) + w[name + ".bias"]).astype(np.float32)


def layer_norm(x, w, name, eps):            # nn.LayerNorm over the last axis             [T, H] -> [T, H]
    x = x.astype(np.float64)
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + eps) * w[name + ".weight"] + w[name + ".bias"]).astype(np.float32)


def gelu(x):                                # ACT2FN["gelu"]: the erf form, not tanh      [T, I] -> [T, I]
    x = x.astype(np.float64)
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))).astype(np.float32)


def position_ids(ids, c):                   # BERT: 0..T-1; XLM-R: create_position_ids_from_input_ids
    if not c.positions_from_ids:
        return np.arange(len(ids))
    not_pad = ids != c.pad_token_id         # positions count the non-<pad> tokens, after pad_token_id
    return np.cumsum(not_pad) * not_pad + c.pad_token_id


def embeddings(ids, w, c):                  # BertEmbeddings.forward                      ids [T] -> [T, H]
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][0]  # one segment
    x = x + w["embeddings.position_embeddings.weight"][position_ids(ids, c)]
    return layer_norm(x, w, "embeddings.LayerNorm", c.layer_norm_eps)


def self_attention(x, w, layer, c):         # BertSelfAttention, eager_attention_forward   [T, H] -> [T, H]
    T, n, d = len(x), c.num_attention_heads, c.head_size
    q, k, v = (linear(x, w, f"{layer}.attention.self.{m}").astype(np.float64).reshape(T, n, d).transpose(1, 0, 2)
               for m in ("query", "key", "value"))                # each [n, T, d]
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)               # [n, T, T]
    p = np.exp(scores - scores.max(-1, keepdims=True))             # softmax over the keys ...
    p /= p.sum(-1, keepdims=True)                                  # ... [n, T, T]
    return (p @ v).transpose(1, 0, 2).reshape(T, n * d).astype(np.float32)  # [n, T, d] -> [T, H]


def encoder_layer(x, w, i, c):              # BertLayer: attention, then FFN, each post-LayerNorm
    layer, eps = f"encoder.layer.{i}", c.layer_norm_eps
    a = self_attention(x, w, layer, c)                                                      # [T, H]
    x = layer_norm(linear(a, w, f"{layer}.attention.output.dense") + x, w,                  # BertSelfOutput
                   f"{layer}.attention.output.LayerNorm", eps)                              # [T, H]
    h = gelu(linear(x, w, f"{layer}.intermediate.dense"))                                   # BertIntermediate [T, I]
    return layer_norm(linear(h, w, f"{layer}.output.dense") + x, w, f"{layer}.output.LayerNorm", eps)  # BertOutput


def forward(ids, w, c):                     # BertModel.forward: every hidden state, embeddings first
    states = [embeddings(ids, w, c)]                                                        # [T, H]
    for i in range(c.num_hidden_layers):
        states.append(encoder_layer(states[-1], w, i, c))                                   # [T, H]
    return states                                                                           # L + 1 x [T, H]


def pool(h, mode, normalize):               # sentence-transformers Pooling, then Normalize  [T, H] -> [H]
    h = h.astype(np.float64)
    v = {"mean": lambda: h.mean(0), "cls": lambda: h[0], "max": lambda: h.max(0),
         "mean_sqrt_len_tokens": lambda: h.sum(0) / math.sqrt(len(h))}[mode]()            # [H]
    return (v / max(np.linalg.norm(v), 1e-12) if normalize else v).astype(np.float32)      # F.normalize


class ReferenceModel:
    """A model folder run by the functions above: ``embed(text)`` is ``E5Model.encode(text)`` by default."""

    def __init__(self, folder, max_length: int | None = None):
        folder = Path(folder)
        self.config = BertConfig.from_file(folder / "config.json")
        self.modules = SentenceModules.from_folder(folder)
        self.tokenizer = ModelTokenizer.from_folder(folder, self.config.max_tokens, max_length)
        self.weights = read_tensors(folder)
        name = self.modules.default_prompt_name  # the prompt encode() adds when it is given none
        self.prompt = self.modules.prompt(name) if name else ""

    def token_ids(self, text: str) -> np.ndarray:
        return self.tokenizer.tokenize([self.prompt + text]).ids[0]

    def hidden_states(self, text: str) -> list[np.ndarray]:
        return forward(self.token_ids(text), self.weights, self.config)

    def embed(self, text: str, normalize: bool | None = None) -> np.ndarray:
        normalize = self.modules.normalize if normalize is None else normalize
        return pool(self.hidden_states(text)[-1], self.modules.pooling, normalize)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: python -m e5np.reference_model FOLDER TEXT...", file=sys.stderr)
        return 2
    try:
        model = ReferenceModel(args[0])
        for text in args[1:]:
            print(json.dumps(model.embed(text).tolist()))
    except (E5npError, OSError) as e:
        print(f"e5np.reference_model: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
