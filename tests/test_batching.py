"""Batches by length: every text once, longest first, within the text and token caps."""

import numpy as np
import pytest

from e5np.engine.batching import length_sorted_batches


@pytest.mark.parametrize("batch_size, max_tokens", [(32, 10**6), (4, 10**6), (32, 100), (3, 60), (32, 1)])
def test_batches_cover_every_text_within_both_caps(batch_size, max_tokens):
    lengths = np.random.default_rng(0).integers(1, 80, 101).tolist()
    batches = length_sorted_batches(lengths, batch_size, max_tokens)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    for b in batches:
        tokens = sum(lengths[i] for i in b)
        assert 1 <= len(b) <= batch_size
        assert tokens <= max_tokens or len(b) == 1  # a text longer than the cap goes alone
    # greedy: a batch stops only when the next text would break a cap
    for b, nxt in zip(batches, batches[1:]):
        assert len(b) == batch_size or sum(lengths[i] for i in b) + lengths[nxt[0]] > max_tokens


def test_no_texts_no_batches():
    assert length_sorted_batches([], 32, 2048) == []
