"""e5np: E5 text embeddings on the CPU without torch (safetensors + Numba kernels)."""

from .errors import E5npError, ModelFileError, ModelNotFoundError, UnsupportedModelError
from .model import PASSAGE, QUERY, E5Model, Embeddings

__version__ = "0.1.0"
__all__ = ["E5Model", "Embeddings", "QUERY", "PASSAGE", "E5npError", "ModelFileError", "ModelNotFoundError",
           "UnsupportedModelError", "__version__"]
