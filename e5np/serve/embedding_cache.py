"""A byte-bounded LRU of embeddings, keyed by a text's token ids and the normalize flag.

Exact by construction: e5np's embedding of a text does not depend on the batch it ran in (bit for
bit, tested), so a cached vector is the vector a fresh pass would give. ``dimensions`` is applied
to the cached full vector after the lookup, as to a fresh one. A cache belongs to one loaded
model (the server creates it with the model and never shares it). Lookups return copies: a
reply never holds memory that a later eviction or insertion could reuse.
"""

import threading
from collections import OrderedDict

import numpy as np

ENTRY_OVERHEAD = 160  # bytes an entry costs beyond its key and vector (dict slot, tuple, array header)


class EmbeddingCache:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = self.hits = self.misses = self.evictions = 0
        self._entries: OrderedDict[tuple[bytes, bool], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(ids: np.ndarray, normalize: bool) -> tuple[bytes, bool]:
        return np.ascontiguousarray(ids, dtype=np.int32).tobytes(), normalize

    def get_many(self, ids: list[np.ndarray], normalize: bool) -> list[np.ndarray | None]:
        """Each text's cached vector (a copy), or None; counts hits and misses."""
        if self.max_bytes <= 0:
            return [None] * len(ids)
        found = []
        with self._lock:
            for seq in ids:
                vector = self._entries.get(self.key(seq, normalize))
                if vector is None:
                    self.misses += 1
                    found.append(None)
                else:
                    self._entries.move_to_end(self.key(seq, normalize))
                    self.hits += 1
                    found.append(vector.copy())
        return found

    def put_many(self, ids: list[np.ndarray], normalize: bool, vectors: np.ndarray) -> None:
        """Keep each text's vector (copied), evicting the least recently used past ``max_bytes``."""
        if self.max_bytes <= 0:
            return
        with self._lock:
            for seq, vector in zip(ids, vectors):
                key = self.key(seq, normalize)
                size = len(key[0]) + vector.nbytes + ENTRY_OVERHEAD
                if size > self.max_bytes or key in self._entries:
                    continue
                self._entries[key] = np.array(vector, np.float32)
                self.bytes += size
                while self.bytes > self.max_bytes:
                    old_key, old = self._entries.popitem(last=False)
                    self.bytes -= len(old_key[0]) + old.nbytes + ENTRY_OVERHEAD
                    self.evictions += 1

    def __len__(self) -> int:
        return len(self._entries)
