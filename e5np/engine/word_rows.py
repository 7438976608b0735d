"""The word-embedding table, read row by row from the checkpoint file rather than memory-mapped.

It is the one tensor read at random for as long as a model runs. Memory-mapped, each row read
faults in its page and the kernel maps cached neighbouring pages with it (fault-around;
MADV_RANDOM did not stop it here), so after a few batches most of the table (119 MiB on
e5-large) counts in the process's RSS. Read with ``pread``, a batch copies the rows of its
distinct tokens into a small array, and the file's pages stay in the page cache, outside RSS.
(``os.preadv``; ``pread`` on macOS, a locked seek and read on Windows: ``runtime.portable``).
A row costs about 1.7 us that way (0.1% of an e5-large bf16 batch, but 1.5 to 2.5% of
all-MiniLM-L6-v2's for 45 MiB), so tables up to READ_FROM_FILE_ABOVE stay mapped.
"""

import numpy as np

from ..errors import ModelFileError
from ..runtime import RangeReader

READ_FROM_FILE_ABOVE = 64 * 2**20  # bytes


class WordRows:
    """The word-embedding table [vocab, H]: read from the checkpoint file row by row, or kept as loaded."""

    def __init__(self, table: np.ndarray, read_from_file: bool | None = None):
        """``table``: the checkpoint's [vocab, H] tensor; read from its file when it is a float32
        memory map and ``read_from_file`` (default: when it is larger than READ_FROM_FILE_ABOVE)."""
        self.shape = table.shape
        mapped = isinstance(table, np.memmap) and table.dtype == np.float32 and table.flags.c_contiguous
        if read_from_file is None:
            read_from_file = table.nbytes > READ_FROM_FILE_ABOVE
        self._table = None if mapped and read_from_file else table
        if self._table is None:
            self._path, self._offset = table.filename, table.offset
            self._file = RangeReader(table.filename)

    @property
    def reads_from_file(self) -> bool:
        return self._table is None

    def rows_for(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, index): token t's embedding is rows[index[t]]; from the file, rows holds the
        distinct ids' rows; a table kept as loaded is returned whole, the ids as the index."""
        if len(ids) and not 0 <= ids.min() <= ids.max() < self.shape[0]:
            bad = ids.min() if ids.min() < 0 else ids.max()
            raise ValueError(f"token id {bad} is outside the word-embedding table ({self.shape[0]} rows)")
        if self._table is not None:
            return self._table, ids
        distinct, index = np.unique(ids, return_inverse=True)
        rows = np.empty((len(distinct), self.shape[1]), np.float32)
        row_bytes = rows.strides[0]
        view = memoryview(rows).cast("B")
        for i, token in enumerate(distinct.tolist()):
            got = self._file.read_into(view[i * row_bytes:(i + 1) * row_bytes], self._offset + token * row_bytes)
            if got != row_bytes:
                raise ModelFileError(f"{self._path}: word embedding row {token} could not be read (file changed since loading?)")
        return rows, index.astype(np.int32)
