"""Token embeddings: word + token_type + position, then LayerNorm (HF ``BertEmbeddings``).

  e = LayerNorm((word[id] + token_type[type]) + position[pos])      (dropout: none at inference)

The sum order is HF's (4.46: inputs_embeds + token_type, then += position), each add in float32.
"""

from numba import prange

from .jit import kernel
from .layernorm import layernorm_row_


@kernel(parallel=True)
def embed_layernorm_(out, input_ids, position_ids, token_type_ids, word, position, token_type, gamma, beta, eps):
    """out[t] = LayerNorm(word[input_ids[t]] + token_type[token_type_ids[t]] + position[position_ids[t]])."""
    for t in prange(out.shape[0]):
        w = word[input_ids[t]]
        tt = token_type[token_type_ids[t]]
        p = position[position_ids[t]]
        row = out[t]
        for c in range(row.shape[0]):
            row[c] = (w[c] + tt[c]) + p[c]
        layernorm_row_(row, gamma, beta, eps)
