"""e5np.evaluation.metrics against pytrec_eval (trec_eval's own code), the reference BEIR and MTEB use."""

import random

import pytest
import pytrec_eval

from e5np.evaluation import rank, retrieval_metrics


def pytrec(qrels, run, k):
    measures = {f"ndcg_cut.{k}", f"map_cut.{k}", f"recall.{k}"}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    mean = {name: sum(q[key] for q in per_query.values()) / len(per_query)
            for name, key in [(f"ndcg@{k}", f"ndcg_cut_{k}"), (f"map@{k}", f"map_cut_{k}"), (f"recall@{k}", f"recall_{k}")]}
    return mean


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 5, 10, 100])
def test_random_graded_qrels_with_ties(seed, k):
    rng = random.Random(seed)
    qrels = {f"q{i}": {f"d{rng.randint(0, 30)}": rng.choice([0, 1, 2, 3]) for _ in range(rng.randint(1, 6))}
             for i in range(40)}
    run = {f"q{i}": {f"d{j}": round(rng.random(), 1) for j in rng.sample(range(40), 25)}  # many tied scores
           for i in range(45)}  # 5 queries without judgements
    ours, theirs = retrieval_metrics(qrels, run, cutoffs=(k,)), pytrec(qrels, run, k)
    for name in theirs:
        assert ours[name] == pytest.approx(theirs[name], abs=1e-12), name


def test_hand_made_example():
    qrels = {"q1": {"a": 1, "c": 2}, "q2": {"x": 1}}
    run = {"q1": {"a": 0.9, "b": 0.8, "c": 0.7}, "q2": {"y": 0.5, "z": 0.5, "x": 0.4}}
    ours = retrieval_metrics(qrels, run, cutoffs=(2,))
    assert ours == pytest.approx(pytrec(qrels, run, 2))
    # by hand: q1 top 2 = a, b: recall 1/2, AP (1/1)/2, nDCG (1/log2 2) / (2/log2 2 + 1/log2 3)
    assert ours["recall@2"] == pytest.approx((0.5 + 0.0) / 2)


def test_ties_break_on_document_id_descending():
    assert rank({"a": 0.5, "c": 0.5, "b": 0.9}) == ["b", "c", "a"]
