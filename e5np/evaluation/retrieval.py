"""Reproducing published retrieval scores: BEIR-style queries, corpus and qrels, in their usual layouts.

Queries are embedded once; the corpus is streamed through the model in chunks, and
each chunk's cosine scores against all queries are merged into a running top-k per query, so
memory holds the queries, one chunk and the top-k lists, never the whole corpus.
"""

import csv
import heapq
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..corpus import BadRow, CorpusError, Fields, read_records
from ..engine import progress_bar
from .metrics import retrieval_metrics


@dataclass(frozen=True)
class Prefixes:
    query: str | None
    passage: str | None


E5_PREFIXES = Prefixes("query: ", "passage: ")
NO_PREFIXES = Prefixes(None, None)


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR ``qrels/test.tsv``: header ``query-id corpus-id score``, tab-separated."""
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(rows, None)
        if not header or len(header) < 3:
            raise CorpusError(f"{path}: expected a header 'query-id<TAB>corpus-id<TAB>score'")
        for row in rows:
            if len(row) < 3:
                raise CorpusError(f"{path}, line {rows.line_num}: expected 3 tab-separated columns")
            try:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
            except ValueError:
                raise CorpusError(f"{path}, line {rows.line_num}: score {row[2]!r} is not an integer") from None
    return qrels


def _read_all(path: Path, fields: Fields) -> list:
    records = list(read_records(path, fields))
    bad = [r for r in records if isinstance(r, BadRow)]
    if bad:
        raise CorpusError(f"{path}, line {bad[0].line}: {bad[0].reason}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
    return records


def search(model, queries: list, corpus_path: Path, fields: Fields, prefixes: Prefixes, top_k: int = 100,
           batch_size: int = 32, chunk_size: int = 4096, progress: bool = False) -> dict[str, dict[str, float]]:
    """Exact cosine top-k: {query id: {doc id: score}} for every query."""
    q = model.encode([r.text for r in queries], batch_size=batch_size, prefix=prefixes.query)
    heaps: list[list] = [[] for _ in queries]  # min-heaps of (score, doc id)
    chunk_ids, chunk_texts = [], []
    bar = progress_bar(progress, unit="doc", desc=f"embedding {corpus_path.name}")
    seen, truncated = 0, []

    def flush():
        nonlocal seen
        docs = model.encode(chunk_texts, batch_size=batch_size, prefix=prefixes.passage, log_truncation=False)
        truncated.extend(seen + i for i in docs.truncated)
        seen += len(chunk_texts)
        scores = q @ docs.T  # [queries, chunk]
        k = min(top_k, scores.shape[1])
        best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        for qi, heap in enumerate(heaps):
            for j in best[qi]:
                item = (float(scores[qi, j]), chunk_ids[j])
                if len(heap) < top_k:
                    heapq.heappush(heap, item)
                elif item > heap[0]:
                    heapq.heapreplace(heap, item)
        bar.update(len(chunk_texts))
        chunk_ids.clear()
        chunk_texts.clear()

    for record in read_records(corpus_path, fields):
        if isinstance(record, BadRow):
            raise CorpusError(f"{corpus_path}, line {record.line}: {record.reason}")
        chunk_ids.append(record.id)
        chunk_texts.append(record.text)
        if len(chunk_texts) == chunk_size:
            flush()
    if chunk_texts:
        flush()
    bar.close()
    if truncated:
        model.warn_truncated(len(truncated), seen, truncated[0])
    return {r.id: {doc: score for score, doc in heap} for r, heap in zip(queries, heaps)}


def evaluate_retrieval(model, corpus: Path, queries: Path, qrels: Path, prefixes: Prefixes,
                       fields: Fields = Fields(), top_k: int = 100, batch_size: int = 32,
                       progress: bool = False) -> dict[str, float]:
    """nDCG@10, MAP@100, Recall@100 (and the other cutoffs) the way BEIR / pytrec_eval compute them."""
    judged = read_qrels(qrels)
    query_records = [r for r in _read_all(queries, Fields(text="text", id="_id", title=None)) if r.id in judged]
    if not query_records:
        raise CorpusError(f"{queries}: none of its query ids appear in {qrels}")
    run = search(model, query_records, corpus, fields, prefixes, top_k, batch_size, progress=progress)
    return {"queries": len(query_records), **retrieval_metrics(judged, run, cutoffs=(10, top_k))}
