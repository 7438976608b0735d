"""Published benchmark scores, reproduced: e5np and sentence-transformers side by side (run by hand).

  python benchmarks/quality.py [--model FOLDER] [--data ../shared/data]

STS-B test (cosine Spearman) and BEIR SciFact (nDCG@10) on all-MiniLM-L6-v2 (no prefix,
max length 256, documents as title + " " + text), the settings of MTEB's published figures.
Both systems are scored by the same code (e5np.metrics, checked against pytrec_eval in the
tests). Writes benchmarks/results/quality.json and quality.md. Needs the test extra.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from e5np import E5Model  # noqa: E402
from e5np.evaluate import NO_PREFIXES, evaluate_retrieval, evaluate_sts, read_qrels, read_sts  # noqa: E402
from e5np.metrics import retrieval_metrics  # noqa: E402
from e5np.records import Fields, read_records  # noqa: E402

PUBLISHED = {"stsb_spearman": 0.82032, "scifact_ndcg10": 0.64508}  # MTEB, mteb 1.12.75


def sentence_transformers_scores(folder: Path, data: Path) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    st = SentenceTransformer(str(folder), device="cpu")
    gold, first, second = read_sts(data / "stsb" / "test.tsv")
    a = st.encode(first, batch_size=32, normalize_embeddings=True)
    b = st.encode(second, batch_size=32, normalize_embeddings=True)
    sts = float(spearmanr(gold, (a * b).sum(1))[0])

    scifact = data / "scifact"
    qrels = read_qrels(scifact / "qrels" / "test.tsv")
    queries = [r for r in read_records(scifact / "queries.jsonl", Fields(title=None)) if r.id in qrels]
    docs = list(read_records(scifact / "corpus.jsonl"))
    q = st.encode([r.text for r in queries], batch_size=32, normalize_embeddings=True)
    d = st.encode([r.text for r in docs], batch_size=32, normalize_embeddings=True)
    scores = q @ d.T
    top = np.argsort(-scores, axis=1)[:, :100]
    run = {r.id: {docs[j].id: float(scores[i, j]) for j in top[i]} for i, r in enumerate(queries)}
    return {"stsb_spearman": sts, "scifact_ndcg10": retrieval_metrics(qrels, run, cutoffs=(10,))["ndcg@10"]}


def e5np_scores(folder: Path, data: Path) -> dict:
    model = E5Model(folder)
    sts = evaluate_sts(model, data / "stsb" / "test.tsv")["spearman"]
    scifact = data / "scifact"
    retrieval = evaluate_retrieval(model, scifact / "corpus.jsonl", scifact / "queries.jsonl",
                                   scifact / "qrels" / "test.tsv", NO_PREFIXES)
    return {"stsb_spearman": sts, "scifact_ndcg10": retrieval["ndcg@10"]}


def main():
    import make_fixtures

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None, help="default: the all-MiniLM-L6-v2 fixture")
    parser.add_argument("--data", type=Path, default=make_fixtures.SHARED / "data")
    args = parser.parse_args()
    folder = args.model or make_fixtures.minilm()
    results, seconds = {}, {}
    for name, fn in [("e5np", e5np_scores), ("sentence-transformers", sentence_transformers_scores)]:
        start = time.perf_counter()
        results[name] = fn(folder, args.data)
        seconds[name] = time.perf_counter() - start
        print(name, results[name], f"{seconds[name]:.0f} s", flush=True)
    results["published (MTEB)"] = PUBLISHED
    out = REPO / "benchmarks" / "results"
    (out / "quality.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "model": str(folder),
                                                  "scores": results, "seconds": seconds}, indent=2))
    lines = ["| system | STS-B test Spearman | SciFact nDCG@10 | seconds (both) |", "|---|---|---|---|"]
    for name, s in results.items():
        lines.append(f"| {name} | {s['stsb_spearman']:.5f} | {s['scifact_ndcg10']:.5f} | "
                     f"{seconds[name]:.0f} |" if name in seconds else
                     f"| {name} | {s['stsb_spearman']:.5f} | {s['scifact_ndcg10']:.5f} | |")
    (out / "quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
