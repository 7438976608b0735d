"""Published scores reproduced on the usual files: BEIR retrieval (nDCG@10 ...) and STS (Spearman)."""

from .metrics import query_metrics, rank, retrieval_metrics
from .retrieval import E5_PREFIXES, NO_PREFIXES, Prefixes, evaluate_retrieval, read_qrels, search
from .sts import evaluate_sts, read_sts

__all__ = ["query_metrics", "rank", "retrieval_metrics", "E5_PREFIXES", "NO_PREFIXES", "Prefixes",
           "evaluate_retrieval", "read_qrels", "search", "evaluate_sts", "read_sts"]
