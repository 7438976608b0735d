"""e5np: E5 text embeddings on the CPU without torch (safetensors + Numba kernels).

The public face. ``E5Model`` and ``Embeddings`` load on first use (``from e5np import E5Model``
works as always), so ``import e5np`` and ``python -m e5np.reference_model`` pull in neither Numba
nor any application.

  engine/       the model: config, weights, tokens, batches, the encoder, ``E5Model``
  runtime/      where it runs: this CPU's paths, precision, the GEMM probe, threads
  corpus/       applications: files of texts -> vectors on disk (.npy or Parquet shards)
  evaluation/   published scores: BEIR retrieval, STS
  serve/        the HTTP server (OpenAI and TEI routes)
  distributed/  Ray: corpus shards and Datasets on actors
  cli.py        the ``e5np`` command, a thin layer over the above
  reference_model.py   the whole model in one screen of plain NumPy
  kernels (e5np.kernels, from kernels/)   the Numba kernels and their NumPy twins
"""

from .errors import E5npError, ModelFileError, ModelNotFoundError, UnencodableTextError, UnsupportedModelError

__version__ = "0.1.0"
_FROM_ENGINE = ("E5Model", "Embeddings", "QUERY", "PASSAGE")
__all__ = [*_FROM_ENGINE, "E5npError", "ModelFileError", "ModelNotFoundError", "UnsupportedModelError",
           "UnencodableTextError", "__version__"]


def __getattr__(name: str):
    if name in _FROM_ENGINE:
        from . import engine
        return getattr(engine, name)
    raise AttributeError(f"module 'e5np' has no attribute {name!r}")
