"""Which int8 scheme keeps E5's quality? The scheme study of issue #28, on real weights.

  python benchmarks/int8_quality.py [--models all-MiniLM-L6-v2 paraphrase-MiniLM-L3-v2 multilingual-e5-small]

Simulates each scheme exactly as the VNNI kernel computes it (``e5np.kernels.int8``'s NumPy twin:
int8 weights per output channel, uint8 activations per token, exact integer sums, the float32
epilogue); everything else is e5np fp32. The schemes:

- "sym": activations symmetric (scale max|x| / 127, zero point 128), the plain scheme;
- "asym": activations asymmetric per token (min..max onto 0..255), free with vpdpbusd's unsigned x;
- "+ smooth (layernorm)": SmoothQuant's per-channel migration on the two LayerNorm-fed GEMMs (QKV,
  FFN-in) with each channel's activation range estimated from the LayerNorm's own parameters,
  |beta| + R |gamma| (no data: the normalised value rarely leaves +-R);
- "+ smooth (STS-B dev)": the same with each channel's largest |x| recorded on STS-B *dev*
  sentences (held apart from the test sentences that measure quality); "all four GEMMs": every
  GEMM's input smoothed so, not only the LayerNorm-fed two;
- "+ smooth (e5np's calibration texts)": what e5np ships (``e5np/engine/calibration.py``), and the
  first row, ``E5Model(precision="int8")`` itself (the VNNI kernels, not this simulation);
- "... , X fp32": GEMM X left in fp32, to find where int8 costs most;
- "+ N float32 outlier channels": LLM.int8's decomposition, the N input channels of each GEMM with
  the largest calibrated range (after smoothing) kept float32; 4 is what e5np ships.

Metrics over all STS-B test sentences: per-text cosine to e5np fp32 (min, mean), STS-B Spearman
minus fp32's. Gates (#28): min >= 0.995, mean >= 0.999, Spearman within 0.002. Writes
benchmarks/results/int8-quality.json and prints a Markdown table.
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
from e5np.evaluation.sts import read_sts  # noqa: E402
from e5np.engine.calibration import input_maxima  # noqa: E402
from e5np.kernels import add_bias_, bias_gelu_, int8  # noqa: E402

FIXTURES = {"all-MiniLM-L6-v2": make_fixtures.minilm, "paraphrase-MiniLM-L3-v2": make_fixtures.paraphrase_minilm_l3,
            "multilingual-e5-small": make_fixtures.multilingual_e5_small, "e5-large-random": make_fixtures.e5_large_random}
LINEARS = ("qkv", "attn_out", "ffn_in", "ffn_out")
LN_FED = ("qkv", "ffn_in")
FLOPS = {"qkv": 3, "attn_out": 1, "ffn_in": 4, "ffn_out": 4}  # x H^2 per token, with I = 4H
K_PER_H = {"qkv": 1, "attn_out": 1, "ffn_in": 1, "ffn_out": 4}  # each GEMM's K, in units of H


def int8_share(hidden: int, keep=(), outliers=0, **_) -> float:
    """The share of the GEMMs' FLOPs done in int8: the GEMMs not kept fp32, less their float32 channels."""
    int8_flops = sum(FLOPS[n] * (1 - outliers / (K_PER_H[n] * hidden)) for n in LINEARS if n not in keep)
    return int8_flops / sum(FLOPS.values())


def quantize_sym(x, inv_smooth=None):
    """The plain scheme's activations: symmetric, zero point 128 (for the comparison only)."""
    v = np.asarray(x, np.float32) * (1 if inv_smooth is None else inv_smooth[None, :])
    scale = (np.abs(v).max(axis=1) / np.float32(127)).astype(np.float32)
    scale[scale == 0] = 1
    q = np.clip(np.rint(v / scale[:, None]) + 128, 0, 255).astype(np.uint8)
    return q, scale, np.full(len(v), 128, np.int32)


@dataclasses.dataclass
class Int8Linear:
    """Duck-typed ``e5np.engine.linear.Linear`` (float32 rows in and out) on the simulated scheme."""
    wq: np.ndarray
    w_scale: np.ndarray
    colsum: np.ndarray
    inv_smooth: np.ndarray
    channels: np.ndarray  # the float32 outlier channels
    outlier_w: np.ndarray
    bias: np.ndarray
    out_features: int
    symmetric: bool
    reads_tiles: bool = False

    @classmethod
    def from_rows(cls, weight, bias, smooth=None, symmetric=False, amax=None, outliers=0) -> "Int8Linear":
        channels = int8.outlier_channels(amax, smooth, outliers) if outliers else np.zeros(0, np.int64)
        int8_part, outlier_w = int8.split_outliers(weight, channels)
        wq, w_scale, colsum = int8.quantize_weight(int8_part, smooth)
        inv = np.ones(weight.shape[1], np.float32) if smooth is None else (np.float32(1) / smooth).astype(np.float32)
        inv[channels] = 0
        return cls(wq, w_scale, colsum, inv, channels, outlier_w, bias, weight.shape[0], symmetric)

    def matmul(self, x, out, ws):
        x = np.asarray(x, np.float32)
        xq, scale, zero = (quantize_sym if self.symmetric else int8.quantize_rows)(x, self.inv_smooth)
        out[:] = int8.matmul_int8(xq, scale, zero, self.wq, self.w_scale, self.colsum, None,
                                  np.ascontiguousarray(x[:, self.channels]), self.outlier_w)
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


def calibrated_max(folder: Path, texts: list[str]) -> list[dict[str, np.ndarray]]:
    return input_maxima(E5Model(folder, gemm="blas"), texts, LINEARS)


class Looked:
    """A stand-in model whose encode looks texts up in embeddings already computed (STS-B's pairs are
    the measured sentences: each scheme encodes them once)."""
    def __init__(self, texts, embeddings):
        self.rows = {t: e for t, e in zip(texts, embeddings)}

    def encode(self, texts, **_):
        return np.stack([self.rows[t] for t in texts])


def layernorm_max(model: E5Model, reach: float) -> list[dict[str, np.ndarray]]:
    """Each LN-fed GEMM's channel range from the LayerNorm in front of it: |beta| + reach |gamma|."""
    norms = [model.weights.embeddings.norm] + [layer.ffn_norm for layer in model.weights.layers]
    return [{"qkv": np.abs(norms[i].beta) + reach * np.abs(norms[i].gamma),
             "ffn_in": np.abs(layer.attn_norm.beta) + reach * np.abs(layer.attn_norm.gamma)}
            for i, layer in enumerate(model.weights.layers)]


def scheme_model(folder, rows, fp32, symmetric=False, ranges=None, alpha=0.5, keep=(), every=None, outliers=0):
    """``ranges``: the smoothed GEMMs' channel ranges; ``every``: all four GEMMs' calibrated ranges,
    which pick the ``outliers`` float32 channels of each."""
    layers = []
    for i, (f, r) in enumerate(zip(fp32.weights.layers, rows)):
        rng = ranges[i] if ranges is not None else None
        swapped = {}
        for name in LINEARS:
            if name in keep:
                continue
            w, b = getattr(r, name).weight, getattr(r, name).bias
            smooth = int8.smoothing(rng[name], w, alpha) if rng is not None and name in rng else None
            amax = every[i][name] if every is not None else None
            swapped[name] = Int8Linear.from_rows(w, b, smooth, symmetric, amax, outliers)
        layers.append(dataclasses.replace(f, **swapped))
    return with_linears(E5Model(folder), layers)


def schemes(folder: Path, calibration: list[str]) -> tuple[E5Model, list, dict]:
    fp32 = E5Model(folder)
    rows = E5Model(folder, gemm="blas").weights.layers  # the checkpoint's [N, K] weights
    every = calibrated_max(folder, calibration)
    dev = [{n: c[n] for n in LN_FED} for c in every]
    out = {"sym": dict(symmetric=True), "asym": {}}
    for reach in (3.0, 6.0):
        out[f"asym + smooth (layernorm, R={reach:g})"] = dict(ranges=layernorm_max(fp32, reach))
    for alpha in (0.5, 0.75):
        out[f"asym + smooth (STS-B dev, alpha={alpha:g})"] = dict(ranges=dev, alpha=alpha)
    out["asym + smooth all four GEMMs (STS-B dev)"] = dict(ranges=every)
    own = input_maxima(E5Model(folder, gemm="blas"))
    shipped = [{n: c[n] for n in LN_FED} for c in own]
    out["asym + smooth (e5np's calibration texts)"] = dict(ranges=shipped)
    for name in LINEARS:
        out[f"asym + smooth (e5np's texts), {name} fp32"] = dict(ranges=shipped, keep=(name,))
    for count in (1, 4, 16):
        out[f"asym + smooth (e5np's texts) + {count} float32 outlier channels per GEMM"] = dict(
            ranges=shipped, every=own, outliers=count)
    out["asym + 4 float32 outlier channels, no smoothing"] = dict(every=own, outliers=4)
    return fp32, rows, out


def unit_rows(embeddings) -> np.ndarray:
    """Rows scaled to length 1 (paraphrase-MiniLM-L3-v2 has no Normalize module: cosines, not dot products)."""
    e = np.asarray(embeddings, np.float64)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def scores(embeddings, texts, reference, data, fp32_sts, share) -> dict:
    embeddings = unit_rows(embeddings)
    cosine = (embeddings * reference).sum(1)
    sts = evaluate_sts(Looked(texts, embeddings), data / "stsb" / "test.tsv")["spearman"]
    return {"min_cosine": float(cosine.min()), "mean_cosine": float(cosine.mean()),
            "stsb_minus_fp32": sts - fp32_sts, "int8_flop_share": share}


def measure(folder: Path, texts: list[str], data: Path, calibration: list[str], only=None) -> dict:
    fp32, rows, configs = schemes(folder, calibration)
    reference = unit_rows(fp32.encode(texts))
    fp32_sts = evaluate_sts(Looked(texts, reference), data / "stsb" / "test.tsv")["spearman"]
    result = {"fp32 stsb spearman": fp32_sts}
    shipped = E5Model(folder, precision="int8")  # the kernels themselves, on the scheme e5np ships
    hidden = fp32.config.hidden_size
    result[f"e5np precision='int8' ({shipped.precision})"] = scores(
        shipped.encode(texts), texts, reference, data, fp32_sts, int8_share(hidden, outliers=int8.OUTLIER_CHANNELS))
    for label, kwargs in configs.items():
        if only and label not in only:
            continue
        model = scheme_model(folder, rows, fp32, **kwargs)
        share = int8_share(hidden, **kwargs)
        result[label] = scores(model.encode(texts), texts, reference, data, fp32_sts, share)
        print(label, {k: round(v, 5) for k, v in result[label].items()}, flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=["all-MiniLM-L6-v2"], choices=list(FIXTURES))
    parser.add_argument("--only", nargs="*", help="the scheme labels to run (default: all)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    from e5np.runtime import cpuinfo

    texts = sts_sentences(args.data)
    _, first, second = read_sts(args.data / "stsb" / "dev.tsv")
    calibration = sorted(set(first) | set(second))[::8]  # 1 in 8 dev sentences (~380): the calibration set
    out = REPO / "benchmarks" / "results" / "int8-quality.json"
    result = json.loads(out.read_text()) if out.exists() else {"models": {}}
    for name in args.models:
        earlier = result["models"].get(name, {}) if args.only else {}  # --only adds rows to the model's others
        result["models"][name] = {**earlier, "date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpuinfo("model name"),
                                  "texts": len(texts),
                                  **measure(FIXTURES[name](), texts, args.data, calibration, args.only)}
    out.write_text(json.dumps(result, indent=2))
    print(f"per-text cosine to e5np fp32 over {len(texts)} STS-B test sentences; gates: min >= 0.995, "
          "mean >= 0.999, STS-B Spearman within 0.002")
    print("| model | scheme | int8 share of GEMM FLOPs | min cosine | mean cosine | STS-B Spearman - fp32 |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        for label, r in result["models"][name].items():
            if isinstance(r, dict):
                print(f"| {name} | {label} | {r.get('int8_flop_share', 1):.1%} | {r['min_cosine']:.5f} | "
                      f"{r['mean_cosine']:.5f} | {r['stsb_minus_fp32']:+.5f} |")


if __name__ == "__main__":
    main()
