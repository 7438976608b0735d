"""Published benchmark scores, reproduced: e5np and sentence-transformers side by side (run by hand).

  python benchmarks/quality.py [--model FOLDER] [--data ../shared/data]

STS-B test (cosine Spearman) and BEIR SciFact (nDCG@10) on all-MiniLM-L6-v2 (no prefix,
max length 256, documents as title + " " + text), the settings of MTEB's published figures.
Both systems are scored by the same code (e5np.metrics, checked against pytrec_eval in the
tests). Writes benchmarks/results/quality.json and quality.md. Needs the test extra.
"""

import argparse
import json
import subprocess
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

RESULTS = REPO / "benchmarks" / "results"
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


SYSTEMS = {"e5np": e5np_scores, "sentence-transformers": sentence_transformers_scores}


def main():
    import make_fixtures

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None, help="default: the all-MiniLM-L6-v2 fixture")
    parser.add_argument("--data", type=Path, default=make_fixtures.SHARED / "data")
    parser.add_argument("--system", choices=sorted(SYSTEMS), help=argparse.SUPPRESS)  # one system, in this process
    args = parser.parse_args()
    folder = args.model or make_fixtures.minilm()
    if args.system:
        print(json.dumps(SYSTEMS[args.system](folder, args.data)))
        return
    results, seconds = {}, {}
    for name in SYSTEMS:  # each in its own process: two OpenMP thread pools in one process fight for the cores
        start = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--system", name, "--model", str(folder), "--data", str(args.data)],
                             capture_output=True, text=True, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        seconds[name] = time.perf_counter() - start
        print(name, results[name], f"{seconds[name]:.0f} s", flush=True)
    results["published (MTEB)"] = PUBLISHED
    report = {"date": time.strftime("%Y-%m-%d"), "model": str(folder), "scores": results, "seconds": seconds}
    (RESULTS / "quality.json").write_text(json.dumps(report, indent=2))
    print(write_table(report))


def write_table(report: dict) -> str:
    """quality.md: the scores only (the seconds in quality.json are not a speed benchmark)."""
    lines = [f"all-MiniLM-L6-v2, {report['date']}", "",
             "| system | STS-B test Spearman | SciFact nDCG@10 |", "|---|---|---|"]
    lines += [f"| {name} | {s['stsb_spearman']:.5f} | {s['scifact_ndcg10']:.5f} |" for name, s in report["scores"].items()]
    table = "\n".join(lines) + "\n"
    (RESULTS / "quality.md").write_text(table)
    return table


if __name__ == "__main__":
    main()
