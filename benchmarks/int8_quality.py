"""Would int8 GEMMs (VNNI) keep E5's quality? The numbers of issue #16's int8 gate, before a kernel.

  python benchmarks/int8_quality.py [--models all-MiniLM-L6-v2 e5-large-random]

Simulates the int8 scheme issue #16 names, exactly: weights rounded to int8 per output channel
(scale max|w| / 127), activations per token (scale max|x| / 127), the integer dot products summed
exactly (in float64, where int8 x int8 sums of K <= 4096 are exact, as vpdpbusd's int32 would be),
then scaled back to float32 and given the bias (and GELU) as e5np's fp32 path does. Everything else
is e5np fp32. Configurations: every Linear in int8; each kind of Linear kept in fp32 alone (to find where
int8 costs most); QKV and one FFN projection kept in fp32 (half the GEMM work left in int8). Metrics on all STS-B test sentences: per-text cosine to e5np fp32 (min
and mean) and STS-B Spearman minus fp32's. The gate: min cosine >= 0.999 on real all-MiniLM-L6-v2
and Spearman within 0.002. Writes benchmarks/results/int8-quality.json and prints a Markdown table.
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
from bf16_error_sources import with_linears  # noqa: E402
from quality import sts_sentences  # noqa: E402
from e5np import E5Model  # noqa: E402
from e5np.evaluation import evaluate_sts  # noqa: E402
from e5np.kernels import add_bias_, bias_gelu_  # noqa: E402

FIXTURES = {"all-MiniLM-L6-v2": make_fixtures.minilm, "e5-large-random": make_fixtures.e5_large_random}
LINEARS = ("qkv", "attn_out", "ffn_in", "ffn_out")


def quantize(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: (integers as float64, scale per row)."""
    scale = np.abs(a).max(axis=1).astype(np.float64) / 127
    scale[scale == 0] = 1.0
    return np.clip(np.rint(a / scale[:, None]), -127, 127), scale


@dataclasses.dataclass
class Int8Linear:
    """Duck-typed ``e5np.engine.linear.Linear`` (float32 rows in and out) on the int8 scheme."""
    weight_q: np.ndarray  # [N, K] integers
    weight_scale: np.ndarray  # [N]
    bias: np.ndarray
    out_features: int
    reads_tiles: bool = False

    @classmethod
    def from_rows(cls, weight: np.ndarray, bias: np.ndarray) -> "Int8Linear":
        q, scale = quantize(np.asarray(weight, np.float32))
        return cls(q, scale, bias, weight.shape[0])

    def matmul(self, x, out, ws):
        xq, x_scale = quantize(np.asarray(x, np.float32))
        out[:] = ((xq @ self.weight_q.T) * x_scale[:, None] * self.weight_scale[None, :]).astype(np.float32)
        return out

    def matmul_bias(self, x, out, ws):
        add_bias_(self.matmul(x, out, ws), self.bias)
        return out

    def matmul_gelu(self, x, rows, ws):
        h = self.matmul(x, ws.get("ffn", rows, self.out_features), ws)
        bias_gelu_(h, self.bias)
        return h

    def input_rows(self, x, start, count):
        return x[start:start + count]


def configurations(folder: Path) -> tuple[E5Model, dict[str, E5Model]]:
    fp32 = E5Model(folder)
    rows = E5Model(folder, gemm="blas").weights.layers  # the checkpoint's [N, K] weights
    int8 = [{name: Int8Linear.from_rows(getattr(r, name).weight, getattr(r, name).bias) for name in LINEARS} for r in rows]
    models = {}
    kept = [()] + [(name,) for name in LINEARS] + [("qkv", "ffn_in"), ("qkv", "ffn_out")]
    for keep in kept:
        label = f"{' + '.join(keep)} fp32" if keep else "all int8"
        layers = [dataclasses.replace(f, **{n: q for n, q in swapped.items() if n not in keep})
                  for f, swapped in zip(fp32.weights.layers, int8)]
        models[label] = with_linears(E5Model(folder), layers)
    return fp32, models


def measure(folder: Path, texts: list[str], data: Path) -> dict:
    fp32, models = configurations(folder)
    reference = fp32.encode(texts).astype(np.float64)
    fp32_sts = evaluate_sts(fp32, data / "stsb" / "test.tsv")["spearman"]
    rows = {"fp32 stsb spearman": fp32_sts}
    for label, model in models.items():
        cosine = (model.encode(texts).astype(np.float64) * reference).sum(1)
        rows[label] = {"min_cosine": float(cosine.min()), "mean_cosine": float(cosine.mean()),
                       "stsb_minus_fp32": evaluate_sts(model, data / "stsb" / "test.tsv")["spearman"] - fp32_sts}
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=["all-MiniLM-L6-v2"], choices=list(FIXTURES))
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    from e5np.runtime import cpuinfo

    texts = sts_sentences(args.data)
    out = REPO / "benchmarks" / "results" / "int8-quality.json"
    result = json.loads(out.read_text()) if out.exists() else {"models": {}}
    for name in args.models:
        result["models"][name] = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpuinfo("model name"),
                                  "texts": len(texts), **measure(FIXTURES[name](), texts, args.data)}
    out.write_text(json.dumps(result, indent=2))
    print(f"per-text cosine to e5np fp32 over {len(texts)} STS-B test sentences; gate: min >= 0.999, "
          "STS-B Spearman within 0.002")
    print("| model | configuration | min cosine | mean cosine | STS-B Spearman - fp32 |")
    print("|---|---|---|---|---|")
    for name in args.models:
        for label, r in result["models"][name].items():
            if isinstance(r, dict):
                print(f"| {name} | {label} | {r['min_cosine']:.6f} | {r['mean_cosine']:.6f} | {r['stsb_minus_fp32']:+.5f} |")


if __name__ == "__main__":
    main()
