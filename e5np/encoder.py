"""The forward pass: BERT's encoder in eval mode on a packed batch, one kernel per step.

Mirrors HF ``BertModel`` (models/bert/modeling_bert.py) for absolute positions and
self-attention only; dropout is the identity at inference. T = tokens in the batch,
H = hidden size, I = FFN size. Every kernel call writes into a preallocated buffer.
"""

import numpy as np

from .batching import PackedBatch
from .config import BertConfig
from .kernels import add_bias_, attention_, bias_residual_layernorm_, embed_layernorm_, mean_pool_
from .weights import EmbeddingWeights, LayerWeights, Weights
from .workspace import Workspace


def embed(batch: PackedBatch, w: EmbeddingWeights, eps: float, out: np.ndarray) -> np.ndarray:
    """HF BertEmbeddings: LayerNorm(word + token_type + position)           # ids [T] -> [T, H]"""
    embed_layernorm_(out, batch.input_ids, batch.position_ids, batch.token_type_ids,
                     w.word, w.position, w.token_type, w.norm.gamma, w.norm.beta, eps)
    return out


def encoder_layer_(x: np.ndarray, w: LayerWeights, batch: PackedBatch, c: BertConfig, ws: Workspace) -> None:
    """HF BertLayer, post-LayerNorm, in place on x [T, H]."""
    T, H = x.shape[0], c.hidden_size
    qkv = w.qkv.matmul(x, ws.get("qkv", T, 3 * H), ws)                     # [T, H] -> [T, 3H]
    add_bias_(qkv, w.qkv.bias)                                             # q|k|v + bias
    ctx = ws.get("ctx", T, H)
    attention_(ctx, qkv, batch.seq_starts, c.num_attention_heads)          # [T, 3H] -> [T, H], per sequence
    y = w.attn_out.matmul(ctx, ws.get("y", T, H), ws)                      # [T, H] -> [T, H]
    bias_residual_layernorm_(x, y, w.attn_out.bias, w.attn_norm.gamma, w.attn_norm.beta, c.layer_norm_eps)
    #                                                                        x = LN(y + b + x)
    h = w.ffn_in.matmul_gelu(x, ws)                                        # [T, H] -> [T, I]
    #                                                                        h = gelu(x W^T + b), erf form
    y = w.ffn_out.matmul(h, y, ws)                                         # [T, I] -> [T, H]
    bias_residual_layernorm_(x, y, w.ffn_out.bias, w.ffn_norm.gamma, w.ffn_norm.beta, c.layer_norm_eps)
    #                                                                        x = LN(y + b + x)


def encode_packed(batch: PackedBatch, weights: Weights, c: BertConfig, ws: Workspace,
                  hidden_states: list | None = None) -> np.ndarray:
    """Token ids -> last hidden state [T, H]; appends a copy of every layer's output (the
    embeddings first, as HF's ``output_hidden_states``) to ``hidden_states`` when given."""
    x = embed(batch, weights.embeddings, c.layer_norm_eps, ws.get("x", batch.num_tokens, c.hidden_size))
    if hidden_states is not None:
        hidden_states.append(x.copy())
    for layer in weights.layers:
        encoder_layer_(x, layer, batch, c, ws)
        if hidden_states is not None:
            hidden_states.append(x.copy())
    return x


def pool(x: np.ndarray, batch: PackedBatch, normalize: bool) -> np.ndarray:
    """The model card's average_pool (+ F.normalize)                      # [T, H] -> [n, H]"""
    out = np.empty((len(batch.seq_starts) - 1, x.shape[1]), np.float32)
    mean_pool_(out, x, batch.seq_starts, normalize)
    return out
