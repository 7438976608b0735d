"""The forward pass: BERT's encoder in eval mode on a packed batch, one kernel per step.

Mirrors HF ``BertModel`` (models/bert/modeling_bert.py) for absolute positions and
self-attention only; dropout is the identity at inference. T = tokens in the batch,
H = hidden size, I = FFN size. Every kernel call writes into a preallocated buffer.
"""

import numpy as np

from ..kernels import attention_, bias_residual_layernorm_, embed_layernorm_, pool_
from ..kernels.layernorm import bias_residual_layernorm_bf16_
from ..kernels.pooling import MODES
from .batching import PackedBatch
from .config import BertConfig
from .linear import Linear
from .weights import EmbeddingWeights, LayerWeights, Norm, Weights
from .workspace import Workspace

FFN_ROWS = 512  # tokens per FFN step (a multiple of 32: bf16 tiles are sliced in whole 32-row blocks)


def embed(batch: PackedBatch, w: EmbeddingWeights, eps: float, out: np.ndarray) -> np.ndarray:
    """HF BertEmbeddings: LayerNorm(word + token_type + position)           # ids [T] -> [T, H]"""
    words, word_index = w.word.rows_for(batch.input_ids)  # the batch's distinct tokens' rows
    embed_layernorm_(out, word_index, batch.position_ids, batch.token_type_ids,
                     words, w.position, w.token_type, w.norm.gamma, w.norm.beta, eps)
    return out


def add_norm_(x: np.ndarray, y: np.ndarray, bias: np.ndarray, norm: Norm, eps: float,
              feeds: Linear | None, ws: Workspace) -> np.ndarray:
    """x = LayerNorm(y + bias + x) in place; returns the input of ``feeds``, the Linear that reads x
    next: x itself, or on the AMX path x rounded into its bf16 tiles in the same pass."""
    if feeds is None or not feeds.reads_tiles:
        bias_residual_layernorm_(x, y, bias, norm.gamma, norm.beta, eps)
        return x
    x16 = feeds.input_tiles(x.shape[0], ws)
    bias_residual_layernorm_bf16_(x, x16, y, bias, norm.gamma, norm.beta, eps)
    return x16


def encoder_layer_(x: np.ndarray, x_in: np.ndarray, w: LayerWeights, batch: PackedBatch, c: BertConfig,
                   ws: Workspace, next_qkv: Linear | None) -> np.ndarray:
    """HF BertLayer, post-LayerNorm, in place on x [T, H]. ``x_in`` is x as the QKV projection
    reads it (x, or its bf16 tiles); returns the same for ``next_qkv``, the next layer's."""
    T, H, eps = x.shape[0], c.hidden_size, c.layer_norm_eps
    qkv = w.qkv.matmul_bias(x_in, ws.get("qkv", T, 3 * H), ws)             # [T, H] -> [T, 3H], q|k|v + bias
    ctx = w.attn_out.input_tiles(T, ws) if w.attn_out.reads_tiles else ws.get("ctx", T, H)
    attention_(ctx, qkv, batch.seq_starts, c.num_attention_heads)          # [T, 3H] -> [T, H], per sequence
    y = qkv.reshape(-1)[:T * H].reshape(T, H)  # Q|K|V are spent: y takes their memory (T x H floats less)
    y = w.attn_out.matmul(ctx, y, ws)                                      # [T, H] -> [T, H]
    x_in = add_norm_(x, y, w.attn_out.bias, w.attn_norm, eps, w.ffn_in, ws)  # x = LN(y + b + x)
    y = feed_forward_(x_in, w.ffn_in, w.ffn_out, y, ws)                    # [T, H] -> [T, I] -> [T, H]
    return add_norm_(x, y, w.ffn_out.bias, w.ffn_norm, eps, next_qkv, ws)  # x = LN(y + b + x)


def feed_forward_(x_in: np.ndarray, ffn_in: Linear, ffn_out: Linear, out: np.ndarray, ws: Workspace) -> np.ndarray:
    """out = gelu(x W_in^T + b_in) W_out^T, erf GELU (b_out is left to the LayerNorm), FFN_ROWS
    tokens at a time: the [rows, I] activation stays 8 MB on e5-large instead of growing with the
    batch, and rows are independent, so the result is the same bit for bit."""
    for start in range(0, out.shape[0], FFN_ROWS):
        rows = min(FFN_ROWS, out.shape[0] - start)
        h = ffn_in.matmul_gelu(ffn_in.input_rows(x_in, start, rows), rows, ws)
        ffn_out.matmul(h, out[start:start + rows], ws)
    return out


def encode_packed(batch: PackedBatch, weights: Weights, c: BertConfig, ws: Workspace,
                  hidden_states: list | None = None) -> np.ndarray:
    """Token ids -> last hidden state [T, H]; appends a copy of every layer's output (the
    embeddings first, as HF's ``output_hidden_states``) to ``hidden_states`` when given."""
    x = embed(batch, weights.embeddings, c.layer_norm_eps, ws.get("x", batch.num_tokens, c.hidden_size))
    if hidden_states is not None:
        hidden_states.append(x.copy())
    x_in, layers = x, weights.layers
    for i, layer in enumerate(layers):
        x_in = encoder_layer_(x, x_in, layer, batch, c, ws, layers[i + 1].qkv if i + 1 < len(layers) else None)
        if hidden_states is not None:
            hidden_states.append(x.copy())
    return x


def pool(x: np.ndarray, batch: PackedBatch, mode: str, normalize: bool) -> np.ndarray:
    """sentence-transformers' Pooling (E5: the model card's average_pool), + F.normalize   # [T, H] -> [n, H]"""
    out = np.empty((len(batch.seq_starts) - 1, x.shape[1]), np.float32)
    pool_(out, x, batch.seq_starts, MODES[mode], normalize)
    return out
