"""Past one machine: corpus shards and Ray Datasets embedded on Ray actors, bit-identical to a local run."""

from .node_copies import CACHE_VARIABLE
from .ray_jobs import actor_errors, connect, embed_corpus_ray, embed_dataset, ray_runner

__all__ = ["CACHE_VARIABLE", "actor_errors", "connect", "embed_corpus_ray", "embed_dataset", "ray_runner"]
