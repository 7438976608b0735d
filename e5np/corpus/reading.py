"""A finished corpus folder read back whole: (ids, float32 vectors), from .npy or Parquet shards."""

from pathlib import Path

import numpy as np

from .manifest import read_manifest


def read_corpus(output_dir) -> tuple[list[str], np.ndarray]:
    """All ids and embeddings of a finished corpus folder, .npy or Parquet shards (small corpora)."""
    output_dir = Path(output_dir)
    if read_manifest(output_dir)["settings"].get("output_format") == "parquet":
        from .parquet_shards import read_parquet_vectors
        return read_parquet_vectors(output_dir)
    from .npy_shards import read_npy_vectors
    return read_npy_vectors(output_dir)
