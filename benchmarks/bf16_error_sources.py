"""Where the bf16 path's error comes from: one source made exact at a time (run by hand).

  python benchmarks/bf16_error_sources.py [--texts 400] [--models e5-large-random all-MiniLM-L6-v2] [--scifact]

Per-text cosine of e5np bf16 to e5np fp32 on a seeded sample of the STS-B test sentences, for:
everything in bf16; one kind of Linear (QKV, attention output, FFN in) run by the fp32 GEMM on the
checkpoint's weights instead; and every Linear in fp32 on the bf16-rounded weights (so only the
weights' rounding is left, the activations stay fp32). The FFN's second projection cannot be made
exact alone (its input arrives as bf16 tiles from the first one's epilogue): its share is what the
others leave. ``--scifact`` adds each configuration's SciFact nDCG@10 minus fp32's (meaningful on
the real MiniLM; issue #5's gate is 0.001). Writes each model's rows into
benchmarks/results/bf16-error-sources.json (keeping the other models') and prints a Markdown table.
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

import make_fixtures  # noqa: E402
from quality import e5np_scifact_ndcg10, sts_sentences  # noqa: E402
from e5np import E5Model  # noqa: E402
from e5np.kernels import bf16  # noqa: E402
from e5np.engine.linear import Linear  # noqa: E402
from e5np.engine.weights import Weights  # noqa: E402

FIXTURES = {"e5-large-random": make_fixtures.e5_large_random, "all-MiniLM-L6-v2": make_fixtures.minilm}
EXACT_ALONE = ("qkv", "attn_out", "ffn_in")
LINEARS = ("qkv", "attn_out", "ffn_in", "ffn_out")


def fp32_on_rounded_weights(fp32_linear: Linear, bf16_linear: Linear) -> Linear:
    """The fp32 GEMM's Linear, its weights replaced by the bf16-rounded ones the AMX path uses."""
    n, k = fp32_linear.out_features, fp32_linear.weight.shape[1]  # the fp32 GEMM's panels: [N'/32, K, 32]
    rows = bf16.weight_tiles_to_rows(bf16_linear.weight, bf16_linear.split)  # hi + lo where split
    return Linear.from_checkpoint(rows[:n, :k], fp32_linear.bias, "numba")


def with_linears(model: E5Model, layers) -> E5Model:
    model.weights = Weights(model.weights.embeddings, layers)
    return model


def configurations(folder: Path) -> tuple[E5Model, dict[str, E5Model]]:
    """e5np fp32, and the bf16 configurations compared with it (each one source made exact)."""
    fp32, bf = E5Model(folder), E5Model(folder, precision="bf16")
    pairs = list(zip(fp32.weights.layers, bf.weights.layers))
    models = {"all bf16": bf}
    for name in EXACT_ALONE:
        swapped = [dataclasses.replace(b, **{name: getattr(f, name)}) for f, b in pairs]
        models[f"{name} exact"] = with_linears(E5Model(folder, precision="bf16"), swapped)
    rounded = [dataclasses.replace(f, **{name: fp32_on_rounded_weights(getattr(f, name), getattr(b, name))
                                         for name in LINEARS}) for f, b in pairs]
    models["only the weights rounded"] = with_linears(E5Model(folder), rounded)
    return fp32, models


def measure(folder: Path, texts: list[str], data: Path | None) -> dict:
    """Per configuration: cosine to fp32 on ``texts``; with ``data``, SciFact nDCG@10 minus fp32's."""
    fp32, models = configurations(folder)
    reference = fp32.encode(texts).astype(np.float64)
    fp32_ndcg = e5np_scifact_ndcg10(fp32, data) if data else None
    rows = {}
    for label, model in models.items():
        cosine = (model.encode(texts).astype(np.float64) * reference).sum(1)
        rows[label] = {"mean_1_minus_cosine": float((1 - cosine).mean()), "min_cosine": float(cosine.min())}
        if data:
            rows[label]["scifact_ndcg10_minus_fp32"] = e5np_scifact_ndcg10(model, data) - fp32_ndcg
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=400, help="STS-B test sentences (a seeded sample; 0: all)")
    parser.add_argument("--models", nargs="*", default=list(FIXTURES), choices=list(FIXTURES))
    parser.add_argument("--scifact", action="store_true", help="also SciFact nDCG@10 (MiniLM's published setting)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    sentences = sts_sentences(args.data)
    count = args.texts or len(sentences)
    texts = [sentences[i] for i in np.random.default_rng(0).choice(len(sentences), count, replace=False)]
    out = REPO / "benchmarks" / "results" / "bf16-error-sources.json"
    result = json.loads(out.read_text()) if out.exists() else {"models": {}}  # other models' rows are kept
    for name in args.models:
        result["models"][name] = {"date": time.strftime("%Y-%m-%d %H:%M"), "texts": count,
                                  **measure(FIXTURES[name](), texts, args.data if args.scifact else None)}
    out.write_text(json.dumps(result, indent=2))
    print("| model | configuration | mean 1 - cosine | share of the error removed | min cosine | SciFact nDCG@10 - fp32 |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        rows = {label: r for label, r in result["models"][name].items() if isinstance(r, dict)}
        total = rows["all bf16"]["mean_1_minus_cosine"]
        for label, r in rows.items():
            removed = "" if label == "all bf16" else f"{1 - r['mean_1_minus_cosine'] / total:.0%}"
            scifact = f"{r['scifact_ndcg10_minus_fp32']:+.5f}" if "scifact_ndcg10_minus_fp32" in r else ""
            print(f"| {name} | {label} | {r['mean_1_minus_cosine']:.3e} | {removed} | {r['min_cosine']:.8f} | {scifact} |")


if __name__ == "__main__":
    main()
