"""A corpus file (JSONL, CSV, TSV, text) embedded to a folder of shards, resumable, and read back."""

from .manifest import CorpusError, Summary, model_hashes
from .npy_shards import embed_corpus
from .parquet_shards import Job, Shard, embed_corpus_parquet, embed_shard, vectors_table
from .reading import read_corpus
from .records import BadRow, ByteRange, Fields, Record, read_records

__all__ = ["CorpusError", "Summary", "model_hashes", "embed_corpus", "Job", "Shard", "embed_corpus_parquet",
           "embed_shard", "vectors_table", "read_corpus", "BadRow", "ByteRange", "Fields", "Record", "read_records"]
