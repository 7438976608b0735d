"""Reproducing published STS scores: Spearman of cosine similarity against gold scores, from a TSV."""

import csv
import sys
from pathlib import Path

import numpy as np

from ..corpus import CorpusError


def read_sts(path: Path) -> tuple[np.ndarray, list[str], list[str]]:
    """A TSV with columns score, sentence1, sentence2 (header required; no quoting, as STS-B needs)."""
    csv.field_size_limit(sys.maxsize)
    gold, first, second = [], [], []
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"score", "sentence1", "sentence2"} - set(rows.fieldnames or [])
        if missing:
            raise CorpusError(f"{path}: missing columns {sorted(missing)} (header: {rows.fieldnames})")
        for row in rows:
            try:
                gold.append(float(row["score"]))
            except (TypeError, ValueError):
                raise CorpusError(f"{path}, line {rows.line_num}: score {row['score']!r} is not a number") from None
            if row["sentence1"] is None or row["sentence2"] is None:
                raise CorpusError(f"{path}, line {rows.line_num}: fewer than 3 columns")
            first.append(row["sentence1"])
            second.append(row["sentence2"])
    return np.array(gold), first, second


def evaluate_sts(model, path: Path, prefix: str | None = None, batch_size: int = 32) -> dict[str, float]:
    """Spearman and Pearson correlation of cosine similarity with the gold scores (as MTEB reports)."""
    from scipy.stats import pearsonr, spearmanr

    gold, first, second = read_sts(path)
    a = model.encode(first, batch_size=batch_size, prefix=prefix)
    b = model.encode(second, batch_size=batch_size, prefix=prefix)
    cosine = (np.asarray(a, np.float64) * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"pairs": len(gold), "spearman": float(spearmanr(gold, cosine)[0]), "pearson": float(pearsonr(gold, cosine)[0])}
