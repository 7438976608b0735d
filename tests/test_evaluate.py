"""evaluate-retrieval and evaluate-sts: the search, the scores, and the CLI's messages."""

import json
import subprocess
import sys

import numpy as np
import pytest
import pytrec_eval
from scipy.stats import spearmanr

from e5np import E5Model
from e5np.evaluation import NO_PREFIXES, E5_PREFIXES, search
from e5np.corpus import Fields, read_records
from make_fixtures import SHARED

DOCS = ["The Eiffel Tower is in Paris.", "Photosynthesis turns light into chemical energy.",
        "The mitochondria is the powerhouse of the cell.", "Paris is the capital of France.",
        "Python is a programming language.", "Cats are small domesticated carnivores.",
        "The Great Wall of China is very long.", "Vaccines train the immune system.",
        "Rust is a systems programming language.", "Dogs were domesticated from wolves."]
QUERIES = {"q1": "Where is the Eiffel Tower?", "q2": "what do cells use for energy", "q3": "programming languages",
           "q4": "domesticated animals", "q5": "a query without judgements"}
QRELS = {"q1": {"d0": 1, "d3": 1}, "q2": {"d2": 2, "d1": 1}, "q3": {"d4": 1, "d8": 1}, "q4": {"d5": 1, "d9": 1, "d7": 0}}


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "e5np", *map(str, args)], capture_output=True, text=True)


@pytest.fixture
def beir(tmp_path):
    (tmp_path / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": f"d{i}", "title": "", "text": t}) + "\n" for i, t in enumerate(DOCS)))
    (tmp_path / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{s}\n" for q, docs in QRELS.items() for d, s in docs.items()))
    return tmp_path


@pytest.mark.parametrize("prefixes", [NO_PREFIXES, E5_PREFIXES])
def test_chunked_search_equals_brute_force(beir, minilm_folder, prefixes):
    model = E5Model(minilm_folder)
    queries = [r for r in read_records(beir / "queries.jsonl", Fields(title=None))]
    run = search(model, queries, beir / "corpus.jsonl", Fields(), prefixes, top_k=4, chunk_size=3)
    scores = model.encode(list(QUERIES.values()), prefix=prefixes.query) @ model.encode(DOCS, prefix=prefixes.passage).T
    for qi, q in enumerate(QUERIES):
        best = np.argsort(-scores[qi])[:4]
        assert run[q] == pytest.approx({f"d{j}": float(scores[qi, j]) for j in best})


def test_cli_metrics_equal_pytrec_eval(beir, minilm_folder):
    result = run_cli("evaluate-retrieval", "--corpus", beir / "corpus.jsonl", "--queries", beir / "queries.jsonl",
                     "--qrels", beir / "qrels.tsv", "--model", minilm_folder, "--prefixes", "none", "--top-k", 5,
                     "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    ours = json.loads(result.stdout)
    model = E5Model(minilm_folder)
    scores = model.encode(list(QUERIES.values())) @ model.encode(DOCS).T
    run = {q: {f"d{j}": float(scores[i, j]) for j in np.argsort(-scores[i])[:5]} for i, q in enumerate(QUERIES)}
    per_query = pytrec_eval.RelevanceEvaluator(QRELS, {"ndcg_cut.10", "map_cut.5", "recall.5"}).evaluate(run)
    assert ours["queries"] == 4
    for ours_name, theirs_name in [("ndcg@10", "ndcg_cut_10"), ("map@5", "map_cut_5"), ("recall@5", "recall_5")]:
        assert ours[ours_name] == pytest.approx(np.mean([q[theirs_name] for q in per_query.values()]), abs=1e-6)
    assert ours["ndcg@10"] > 0.8  # a real model finds these


def test_cli_errors(beir, minilm_folder, tmp_path):
    (tmp_path / "bad_qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td0\tyes\n")
    bad = run_cli("evaluate-retrieval", "--corpus", beir / "corpus.jsonl", "--queries", beir / "queries.jsonl",
                  "--qrels", tmp_path / "bad_qrels.tsv", "--model", minilm_folder)
    assert bad.returncode == 2 and "line 2: score 'yes' is not an integer" in bad.stderr
    (tmp_path / "sts.tsv").write_text("score\tsentence1\n1.0\ta\n")
    sts = run_cli("evaluate-sts", tmp_path / "sts.tsv", "--model", minilm_folder)
    assert sts.returncode == 2 and "missing columns ['sentence2']" in sts.stderr


def test_stsb_matches_sentence_transformers(minilm_folder):
    path = SHARED / "data" / "stsb" / "test.tsv"
    if not path.exists():
        pytest.skip(f"{path} not present")
    result = run_cli("evaluate-sts", path, "--model", minilm_folder, "--json")
    assert result.returncode == 0, result.stderr
    ours = json.loads(result.stdout)
    from sentence_transformers import SentenceTransformer
    from e5np.evaluation import read_sts
    gold, first, second = read_sts(path)
    st = SentenceTransformer(str(minilm_folder), device="cpu")
    a, b = st.encode(first, normalize_embeddings=True), st.encode(second, normalize_embeddings=True)
    theirs = spearmanr(gold, (a * b).sum(1))[0]
    print(f"\nSTS-B test Spearman: e5np {ours['spearman']:.5f}, sentence-transformers {theirs:.5f}, published 0.82032")
    assert ours["pairs"] == 1379
    assert round(ours["spearman"], 4) == round(theirs, 4)
