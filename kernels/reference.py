"""Plain-NumPy twins of every kernel: the math as written, no loops to tune. Tests compare the
Numba kernels against these; they also serve as the algorithmic reference when reading a kernel.
All take and return float32 arrays and compute in float64 where the kernel does.
"""

import math

import numpy as np
from scipy.special import erf


def layernorm(x, gamma, beta, eps):
    x = x.astype(np.float64)
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + eps) * gamma + beta).astype(np.float32)


def embed_layernorm(input_ids, position_ids, token_type_ids, word, position, token_type, gamma, beta, eps):
    return layernorm(word[input_ids] + token_type[token_type_ids] + position[position_ids], gamma, beta, eps)


def bias_residual_layernorm(x, y, bias, gamma, beta, eps):
    return layernorm((y + bias) + x, gamma, beta, eps)


def gelu(x):
    x = x.astype(np.float64)
    return (0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))).astype(np.float32)


def bias_gelu(y, bias):
    return gelu(y + bias)


def matmul(x, w):
    """x @ W^T for an nn.Linear weight W [N, K], accumulated in float64."""
    return (x.astype(np.float64) @ w.astype(np.float64).T).astype(np.float32)


def pack_weight(w, nr):
    """[N, K] -> [ceil(N/nr), K, nr] column panels, zero-padded (``gemm.pack_weight``)."""
    n, k = w.shape
    padded = np.zeros((-(-n // nr) * nr, k), np.float32)
    padded[:n] = w
    return np.ascontiguousarray(padded.reshape(-1, nr, k).transpose(0, 2, 1))


def softmax(s):
    s = s.astype(np.float64)
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def attention(qkv, seq_starts, num_heads):
    """softmax(Q K^T / sqrt(d)) V per sequence and head, on packed [T, 3H] input."""
    hidden = qkv.shape[1] // 3
    d = hidden // num_heads
    out = np.zeros((qkv.shape[0], hidden), np.float32)
    for s in range(len(seq_starts) - 1):
        rows = slice(seq_starts[s], seq_starts[s + 1])
        for h in range(num_heads):
            q, k, v = (qkv[rows, part * hidden + h * d: part * hidden + (h + 1) * d].astype(np.float64) for part in range(3))
            out[rows, h * d:(h + 1) * d] = softmax(q @ k.T / math.sqrt(d)) @ v
    return out


def attention_padded(q, k, v, mask):
    """HF's eager form on padded [n, heads, L, d] input: a float32-min additive mask on padding keys."""
    scores = q.astype(np.float64) @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    scores = scores + (1.0 - mask[:, None, None, :]) * np.finfo(np.float32).min
    return (softmax(scores) @ v).astype(np.float32)


def pool(x, seq_starts, mode, normalize):
    """sentence-transformers' Pooling (mean, cls, max, mean_sqrt_len_tokens), then Normalize."""
    out = np.zeros((len(seq_starts) - 1, x.shape[1]), np.float32)
    for s in range(len(seq_starts) - 1):
        rows = x[seq_starts[s]:seq_starts[s + 1]].astype(np.float64)
        if len(rows) == 0:
            continue
        pooled = {"mean": lambda: rows.sum(0) / len(rows), "cls": lambda: rows[0],
                  "max": lambda: rows.max(0), "mean_sqrt_len_tokens": lambda: rows.sum(0) / np.sqrt(len(rows))}[mode]()
        if normalize:
            pooled = pooled / max(np.linalg.norm(pooled), 1e-12)
        out[s] = pooled
    return out
