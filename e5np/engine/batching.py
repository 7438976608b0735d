"""Packing: the sequences of a batch laid end to end in one [tokens, hidden] matrix.

No padding is stored or computed; ``seq_starts`` marks where each sequence begins, and
attention and pooling work per sequence. Positions restart for every sequence, as HF's do for
right-padded input: at 0 (BERT), or counted around <pad> tokens from pad_id + 1 (XLM-R; ``pad_id``).
"""

from dataclasses import dataclass

import numpy as np

# Tokens per forward pass by default. The buffers take 20 KiB a token on e5-large in fp32 (x, Q|K|V, the
# attention context; a Linear's output reuses Q|K|V's memory, the FFN runs 512 tokens at a time):
# 160 MiB at most, not 320 for 32 texts of 512 tokens. Above a batch of 32 passages (about 2,500 tokens): a cap
# of 2,048 made bf16 passages 0.93 to 0.94x as fast in two same-process A/Bs (long texts: no change).
MAX_BATCH_TOKENS = 8192


@dataclass(frozen=True)
class PackedBatch:
    input_ids: np.ndarray       # [T] int32, all sequences' tokens back to back
    position_ids: np.ndarray    # [T] int32, each token's position within its sequence
    token_type_ids: np.ndarray  # [T] int32, zeros (single-segment input)
    seq_starts: np.ndarray      # [n + 1] int64, sequence s is tokens seq_starts[s]:seq_starts[s+1]

    @property
    def num_tokens(self) -> int:
        return int(self.seq_starts[-1])


def pack(sequences: list[np.ndarray], pad_id: int | None = None) -> PackedBatch:
    """Token-id arrays -> one packed batch. ``pad_id``: see ``xlmr_positions``."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    seq_starts = np.zeros(len(sequences) + 1, dtype=np.int64)
    np.cumsum(lengths, out=seq_starts[1:])
    total = int(seq_starts[-1])
    input_ids = np.concatenate(sequences).astype(np.int32) if total else np.zeros(0, np.int32)
    if pad_id is None:
        position_ids = np.arange(total, dtype=np.int64) - np.repeat(seq_starts[:-1], lengths)
    else:
        counted = np.concatenate([[0], np.cumsum(input_ids != pad_id)])  # non-<pad> tokens before each token
        position_ids = xlmr_positions(input_ids, counted[1:] - np.repeat(counted[seq_starts[:-1]], lengths), pad_id)
    return PackedBatch(input_ids, position_ids.astype(np.int32), np.zeros(total, np.int32), seq_starts)


def xlmr_positions(ids: np.ndarray, running_count: np.ndarray, pad_id: int) -> np.ndarray:
    """HF RoBERTa's create_position_ids_from_input_ids: ``pad + cumsum(ids != pad) * (ids != pad)``.
    Real tokens sit at pad + 1, pad + 2, ...; a <pad> token (even one inside a text) sits at pad
    and does not count, so the tokens after it keep their numbering."""
    return pad_id + running_count * (ids != pad_id)


def pack_padded(input_ids: np.ndarray, attention_mask: np.ndarray, pad_id: int | None = None) -> PackedBatch:
    """A padded [n, L] batch (HF layout) -> packed. Positions as HF computes them on the padded
    rows, for any mask, left padding included: the column (BERT), or counted from the ids (XLM-R)."""
    rows, cols = np.nonzero(attention_mask)
    if pad_id is not None:
        positions = xlmr_positions(input_ids, np.cumsum(input_ids != pad_id, axis=1), pad_id)[rows, cols]
    else:
        positions = cols
    seq_starts = np.zeros(input_ids.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.count_nonzero(attention_mask, axis=1), out=seq_starts[1:])
    ids = input_ids[rows, cols].astype(np.int32)
    return PackedBatch(ids, positions.astype(np.int32), np.zeros(len(ids), np.int32), seq_starts)


def length_sorted_batches(lengths: list[int], batch_size: int, max_tokens: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (longest first), so the packed batches
    are even; the caller scatters results back to input order. A batch holds at most
    ``batch_size`` texts and ``max_tokens`` tokens (a longer text is a batch of its own): the
    forward pass's buffers scale with the tokens of a batch, not with batch_size x 512."""
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches, start, tokens = [], 0, 0
    for end, i in enumerate(order):
        if end > start and (end - start == batch_size or tokens + lengths[i] > max_tokens):
            batches.append(order[start:end])
            start, tokens = end, 0
        tokens += lengths[i]
    if start < len(order):
        batches.append(order[start:])
    return batches
