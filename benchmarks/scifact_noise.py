"""How far SciFact nDCG@10 moves under errors of bf16's size (run by hand).

  python benchmarks/scifact_noise.py [--draws 40] [--sentence-transformers-bf16]

Issue #5 asks the bf16 path to keep SciFact nDCG@10 within 0.001 of fp32. This measures what that
gate can tell: on all-MiniLM-L6-v2 (MTEB's setting: no prefix, 256 tokens), the queries whose
nDCG@10 changes between e5np fp32 and e5np bf16 (and sentence-transformers bf16 with the flag),
with the fp32 score gap between each relevant document and its neighbour in the ranking; then the
move of nDCG@10 when the fp32 embeddings are turned by bf16's measured per-text error (each text's
own 1 - cosine, and that times 1/4, 1/16, 1/64) in random directions, ``--draws`` times each.
Writes benchmarks/results/scifact-noise.json.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
for folder in ("scripts", "benchmarks", "tests"):
    sys.path.insert(0, str(REPO / folder))

import make_fixtures  # noqa: E402
from checks import cosine_rows  # noqa: E402
from quality import exact_run, scifact, sentence_transformer  # noqa: E402
from e5np import E5Model  # noqa: E402
from e5np.evaluation import query_metrics  # noqa: E402

GATE = 0.001
SCALES = (1.0, 0.25, 1 / 16, 1 / 64)


def per_query_ndcg10(q: np.ndarray, d: np.ndarray, queries, docs, qrels) -> np.ndarray:
    run = exact_run(q.astype(np.float32), d.astype(np.float32), queries, docs)
    return np.array([query_metrics(qrels[r.id], run[r.id], 10)["ndcg@10"] for r in queries])


def gaps_to_neighbours(scores: np.ndarray, relevant: list[int]) -> list[float]:
    """For each relevant document in the top 12 of one query's fp32 scores: the score gap to the
    nearer of its two neighbours in the ranking (how small an error can swap them)."""
    order = np.argsort(-scores)
    gaps = []
    for r, j in enumerate(order[:12]):
        if j in relevant:
            gaps.append(min(abs(scores[j] - scores[order[n]]) for n in (r - 1, r + 1) if 0 <= n < len(order)))
    return gaps


def turned(x: np.ndarray, one_minus_cosine: np.ndarray, rng) -> np.ndarray:
    """Each unit row of x turned by the angle whose 1 - cos is given, in a random direction."""
    noise = rng.standard_normal(x.shape)
    noise -= (noise * x).sum(1, keepdims=True) * x
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    angle = np.arccos(np.clip(1 - one_minus_cosine, -1, 1))[:, None]
    return x * np.cos(angle) + noise * np.sin(angle)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=40)
    parser.add_argument("--sentence-transformers-bf16", action="store_true")
    parser.add_argument("--data", type=Path, default=make_fixtures.SHARED / "data")
    args = parser.parse_args()
    folder = make_fixtures.minilm()
    qrels, queries, docs = scifact(args.data)
    q_texts, d_texts = [r.text for r in queries], [r.text for r in docs]

    embeddings = {}
    for precision in ("fp32", "bf16"):
        model = E5Model(folder, precision=precision)
        embeddings[f"e5np {precision}"] = (model.encode(q_texts), model.encode(d_texts, log_truncation=False))
    if args.sentence_transformers_bf16:
        st = sentence_transformer(folder, bf16=True)
        embeddings["sentence-transformers bf16"] = tuple(
            st.encode(t, batch_size=32, normalize_embeddings=True) for t in (q_texts, d_texts))

    fp32_q, fp32_d = (e.astype(np.float64) for e in embeddings["e5np fp32"])
    base, fp32_scores = per_query_ndcg10(fp32_q, fp32_d, queries, docs, qrels), fp32_q @ fp32_d.T
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "fp32_ndcg10": float(base.mean()), "systems": {}}
    for name, (q, d) in embeddings.items():
        if name == "e5np fp32":
            continue
        ndcg = per_query_ndcg10(q, d, queries, docs, qrels)
        moved = []
        for i in np.nonzero(ndcg != base)[0]:
            relevant = [j for j, doc in enumerate(docs) if qrels[queries[i].id].get(doc.id, 0) > 0]
            moved.append({"query": queries[i].id, "ndcg10_change": float(ndcg[i] - base[i]),
                          "fp32_gaps_to_neighbour": [float(g) for g in gaps_to_neighbours(fp32_scores[i], relevant)]})
        cosine = [cosine_rows(e, f) for e, f in ((q, fp32_q), (d, fp32_d))]  # sentence-transformers bf16: norms off by ~1e-3
        report["systems"][name] = {"ndcg10_minus_fp32": float(ndcg.mean() - base.mean()), "moved_queries": moved,
                                   "mean_1_minus_cosine": float(np.concatenate([1 - c for c in cosine]).mean())}

    bf16_q, bf16_d = embeddings["e5np bf16"]
    errors = [1 - cosine_rows(e, f) for e, f in ((bf16_q, fp32_q), (bf16_d, fp32_d))]
    rng = np.random.default_rng(0)
    report["random_turns"] = {}
    for scale in SCALES:  # the error's 1 - cosine times scale (the angle times its square root)
        draws = [float(per_query_ndcg10(turned(fp32_q, scale * errors[0], rng), turned(fp32_d, scale * errors[1], rng),
                                        queries, docs, qrels).mean() - base.mean()) for _ in range(args.draws)]
        report["random_turns"][str(scale)] = {"draws": draws, "within_gate": float(np.mean(np.abs(draws) <= GATE)),
                                              "median_abs": float(np.median(np.abs(draws)))}
    (REPO / "benchmarks" / "results" / "scifact-noise.json").write_text(json.dumps(report, indent=2))

    print(f"SciFact nDCG@10, fp32 {base.mean():.5f}")
    for name, r in report["systems"].items():
        print(f"{name}: {r['ndcg10_minus_fp32']:+.5f} ({len(r['moved_queries'])} queries moved; mean 1 - cosine "
              f"{r['mean_1_minus_cosine']:.2e})")
        for m in r["moved_queries"]:
            print(f"  query {m['query']}: {m['ndcg10_change']:+.4f}, fp32 gap to the neighbour "
                  f"{', '.join(f'{g:.1e}' for g in m['fp32_gaps_to_neighbour'])}")
    print(f"fp32 embeddings turned by e5np bf16's per-text error (1 - cosine times a scale) in random directions, "
          f"{args.draws} draws each:")
    for scale, r in report["random_turns"].items():
        print(f"  x {scale}: moves {min(r['draws']):+.5f} to {max(r['draws']):+.5f}, median |move| "
              f"{r['median_abs']:.5f}, within {GATE}: {r['within_gate']:.0%}")


if __name__ == "__main__":
    main()
