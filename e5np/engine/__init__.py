"""The engine: config, checkpoint, weights, tokenization, batching, the encoder and ``E5Model``.

What the applications (corpus, evaluation, serve, distributed) may use is exported here; they
import nothing else of the engine. Loaded on first use: the loading modules (config, checkpoint,
tokenization, sentence_modules) import no Numba, so ``e5np.reference_model`` can share them.
"""

import importlib

_EXPORTS = {"E5Model": "model", "Embeddings": "model", "QUERY": "model", "PASSAGE": "model",
            "MAX_BATCH_TOKENS": "batching", "progress_bar": "progress", "packed_weights_status": "model"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'e5np.engine' has no attribute {name!r}")
