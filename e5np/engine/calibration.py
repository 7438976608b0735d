"""Calibration for the int8 path: how large each input channel of each GEMM gets, measured once.

SmoothQuant's migration needs each channel's largest |x|. The LayerNorm outputs that feed QKV and
FFN-in carry a few channels tens of times larger than the rest; quantized per token as they are,
those channels take the whole int8 range and the others keep a few levels. Estimating the ranges
from the LayerNorm's own gamma and beta did not find them (``docs/precision.md``: min cosine 0.993
against 0.997 measured); so e5np runs the exact fp32 model once over its own calibration texts
(``calibration_texts.py``) and records them. The int8 weights are made from the result and cached
with the packed weights: the pass runs once per model, not per load. The same maxima, after
smoothing, pick each GEMM's outlier channels, the few kept float32 (``kernels/int8.py``).
"""

import dataclasses

import numpy as np

from .calibration_texts import CALIBRATION_TEXTS
from .weights import LINEARS, Weights


class RecordingLinear:
    """A Linear that records each input channel's largest |x| on the way through."""

    def __init__(self, inner):
        self.inner, self.amax = inner, None

    def _seen(self, x):
        m = np.abs(np.asarray(x, np.float32)).max(axis=0)
        self.amax = m if self.amax is None else np.maximum(self.amax, m)

    def matmul(self, x, out, ws):
        self._seen(x)
        return self.inner.matmul(x, out, ws)

    def matmul_bias(self, x, out, ws):
        self._seen(x)
        return self.inner.matmul_bias(x, out, ws)

    def matmul_gelu(self, x, rows, ws):
        self._seen(x)
        return self.inner.matmul_gelu(x, rows, ws)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def input_maxima(fp32_model, texts=CALIBRATION_TEXTS, fields=tuple(LINEARS)) -> list[dict[str, np.ndarray]]:
    """Per layer, {field: the largest |x| of each input channel} over ``texts``, run through
    ``fp32_model`` (an E5Model on the exact fp32 path; its weights are wrapped for the pass and
    put back after)."""
    weights = fp32_model.weights
    recorders = [{f: RecordingLinear(getattr(layer, f)) for f in fields} for layer in weights.layers]
    fp32_model.weights = Weights(weights.embeddings, [dataclasses.replace(layer, **r) for layer, r in
                                                      zip(weights.layers, recorders)])
    try:
        fp32_model.encode(list(texts))
    finally:
        fp32_model.weights = weights
    return [{f: r.amax for f, r in layer.items()} for layer in recorders]
