"""Retrieval metrics as trec_eval computes them (and so pytrec_eval, BEIR and MTEB).

- Ranking: by score descending; ties broken by document id descending (trec_eval's order).
- nDCG@k (``ndcg_cut_k``): sum over the top k of rel / log2(rank + 1), divided by the same sum
  over the ideal order of the judged relevance levels (gain = relevance level, as trec_eval).
- MAP@k (``map_cut_k``): sum of precision@rank at each relevant document in the top k, divided by
  the number of relevant documents judged for the query.
- Recall@k (``recall_k``): relevant documents in the top k / relevant documents judged.
A document is relevant when its judged level is > 0. The mean runs over the queries that have
judgements and results (pytrec_eval returns only those; BEIR averages what it returns).
"""

import math


def rank(results: dict[str, float]) -> list[str]:
    """Document ids in trec_eval order: score descending, then id descending."""
    return [doc for doc, _ in sorted(results.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def query_metrics(qrel: dict[str, int], results: dict[str, float], k: int) -> dict[str, float]:
    ranked = rank(results)[:k]
    relevant = {doc for doc, level in qrel.items() if level > 0}
    dcg = sum(qrel.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked) if qrel.get(doc, 0) > 0)
    ideal = sorted((level for level in qrel.values() if level > 0), reverse=True)[:k]
    idcg = sum(level / math.log2(i + 2) for i, level in enumerate(ideal))
    hits, precision_sum = 0, 0.0
    for i, doc in enumerate(ranked):
        if doc in relevant:
            hits += 1
            precision_sum += hits / (i + 1)
    return {
        f"ndcg@{k}": dcg / idcg if idcg else 0.0,
        f"map@{k}": precision_sum / len(relevant) if relevant else 0.0,
        f"recall@{k}": hits / len(relevant) if relevant else 0.0,
    }


def retrieval_metrics(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
                      cutoffs=(10, 100)) -> dict[str, float]:
    """Mean nDCG@k, MAP@k and Recall@k over the queries in both ``qrels`` and ``run``."""
    queries = [q for q in run if q in qrels]
    totals: dict[str, float] = {}
    for q in queries:
        for k in cutoffs:
            for name, value in query_metrics(qrels[q], run[q], k).items():
                totals[name] = totals.get(name, 0.0) + value
    return {name: value / len(queries) for name, value in totals.items()} if queries else {}
