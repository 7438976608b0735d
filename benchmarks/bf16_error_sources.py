"""Where the bf16 path's error comes from: one source made exact at a time (run by hand).

  python benchmarks/bf16_error_sources.py [--texts 400] [--models e5-large-random all-MiniLM-L6-v2]

Per-text cosine of e5np bf16 to e5np fp32 on a seeded sample of the STS-B test sentences, for:
everything in bf16; one kind of Linear (QKV, attention output, FFN in) run by the fp32 GEMM on the
checkpoint's weights instead; and every Linear in fp32 on the bf16-rounded weights (so only the
weights' rounding is left, the activations stay fp32). The FFN's second projection cannot be made
exact alone (its input arrives as bf16 tiles from the first one's epilogue): its share is what the
others leave. Writes benchmarks/results/bf16-error-sources.json and prints a Markdown table.
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
from quality import sts_sentences  # noqa: E402
from e5np import E5Model  # noqa: E402
from e5np.kernels import bf16  # noqa: E402
from e5np.linear import Linear  # noqa: E402
from e5np.weights import Weights  # noqa: E402

FIXTURES = {"e5-large-random": make_fixtures.e5_large_random, "all-MiniLM-L6-v2": make_fixtures.minilm}
EXACT_ALONE = ("qkv", "attn_out", "ffn_in")
LINEARS = ("qkv", "attn_out", "ffn_in", "ffn_out")


def unpack_bf16_weight(linear: Linear) -> np.ndarray:
    """The float32 values of a Linear's bf16 VNNI tiles [N'/16, K'/32, 16, 32], as [N', K']."""
    n16, k32 = linear.weight.shape[:2]
    pairs = linear.weight.reshape(n16, k32, 16, 16, 2)  # [col tile, k step, k pair, column, k in pair]
    return bf16.bf16_bits_to_f32(pairs.transpose(0, 3, 1, 2, 4).reshape(n16 * 16, k32 * 32))


def fp32_on_rounded_weights(fp32_linear: Linear, bf16_linear: Linear) -> Linear:
    """The fp32 GEMM's Linear, its weights replaced by the bf16-rounded ones the AMX path uses."""
    n, k = fp32_linear.out_features, fp32_linear.weight.shape[1]  # the fp32 GEMM's panels: [N'/32, K, 32]
    return Linear.from_checkpoint(unpack_bf16_weight(bf16_linear)[:n, :k], fp32_linear.bias, "numba")


def with_linears(model: E5Model, layers) -> E5Model:
    model.weights = Weights(model.weights.embeddings, layers)
    return model


def measure(folder: Path, texts: list[str]) -> dict:
    fp32, bf = E5Model(folder), E5Model(folder, precision="bf16")
    reference = fp32.encode(texts).astype(np.float64)

    def one_minus_cosine(model: E5Model) -> dict:
        cosine = (model.encode(texts).astype(np.float64) * reference).sum(1)
        return {"mean_1_minus_cosine": float((1 - cosine).mean()), "min_cosine": float(cosine.min())}

    pairs = list(zip(fp32.weights.layers, bf.weights.layers))
    rows = {"all bf16": one_minus_cosine(bf)}
    for name in EXACT_ALONE:
        swapped = [dataclasses.replace(b, **{name: getattr(f, name)}) for f, b in pairs]
        rows[f"{name} exact"] = one_minus_cosine(with_linears(E5Model(folder, precision="bf16"), swapped))
    rounded = [dataclasses.replace(f, **{name: fp32_on_rounded_weights(getattr(f, name), getattr(b, name))
                                         for name in LINEARS}) for f, b in pairs]
    rows["only the weights rounded"] = one_minus_cosine(with_linears(E5Model(folder), rounded))
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--models", nargs="*", default=list(FIXTURES), choices=list(FIXTURES))
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    sentences = sts_sentences(args.data)
    texts = [sentences[i] for i in np.random.default_rng(0).choice(len(sentences), args.texts, replace=False)]
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "texts": args.texts, "models": {}}
    for name in args.models:
        result["models"][name] = measure(FIXTURES[name](), texts)
    (REPO / "benchmarks" / "results" / "bf16-error-sources.json").write_text(json.dumps(result, indent=2))
    print("| model | configuration | mean 1 - cosine | share of the error removed | min cosine |\n|---|---|---|---|---|")
    for name, rows in result["models"].items():
        total = rows["all bf16"]["mean_1_minus_cosine"]
        for label, r in rows.items():
            removed = "" if label == "all bf16" else f"{1 - r['mean_1_minus_cosine'] / total:.0%}"
            print(f"| {name} | {label} | {r['mean_1_minus_cosine']:.3e} | {removed} | {r['min_cosine']:.8f} |")


if __name__ == "__main__":
    main()
