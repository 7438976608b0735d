"""Calibration for the int8 path: how large each input channel of each GEMM gets, measured once.

SmoothQuant's migration needs each channel's largest |x|. The LayerNorm outputs that feed QKV and
FFN-in carry a few channels tens of times larger than the rest; quantized per token as they are,
those channels take the whole int8 range and the others keep a few levels. Estimating the ranges
from the LayerNorm's own gamma and beta did not find them (``docs/precision.md``: min cosine 0.993
against 0.997 measured); so e5np runs the exact fp32 model once over its own calibration texts
(``calibration_texts.py``) and records them. The int8 weights are made from the result and cached
with the packed weights: the pass runs once per model, not per load.
"""

import dataclasses
from pathlib import Path

import numpy as np

from .calibration_texts import CALIBRATION_TEXTS

SMOOTHED = ("qkv", "ffn_in")  # the LayerNorm-fed GEMMs (the other two measured no better smoothed)


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


def input_maxima(folder: Path, texts=CALIBRATION_TEXTS, fields=SMOOTHED) -> list[dict[str, np.ndarray]]:
    """Per layer, {field: the largest |x| of each input channel} over ``texts``, on exact fp32."""
    from .model import E5Model  # the model loads weights, and int8 weights load through here
    from .weights import Weights

    model = E5Model(folder, gemm="blas")  # fp32 on the checkpoint as it is: nothing packed
    recorders = [{f: RecordingLinear(getattr(layer, f)) for f in fields} for layer in model.weights.layers]
    model.weights = Weights(model.weights.embeddings, [dataclasses.replace(layer, **r) for layer, r in
                                                      zip(model.weights.layers, recorders)])
    model.encode(list(texts))
    return [{f: r.amax for f, r in layer.items()} for layer in recorders]
