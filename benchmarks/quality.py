"""Published benchmark scores, reproduced: e5np and sentence-transformers side by side (run by hand).

  python benchmarks/quality.py [--model FOLDER] [--data ../shared/data]
  python benchmarks/quality.py --systems "sentence-transformers bf16" --update   # add one system's scores
  python benchmarks/quality.py --systems "e5np bf16" --cosine-systems e5np-bf16 --update   # and its cosines

STS-B test (cosine Spearman) and BEIR SciFact (nDCG@10) on all-MiniLM-L6-v2 (no prefix,
max length 256, documents as title + " " + text), the settings of MTEB's published figures.
Both systems are scored by the same code (e5np.evaluation.metrics, checked against pytrec_eval in the
tests); e5np runs in fp32 and in bf16. Then the reduced-precision systems (e5np bf16,
transformers bf16, ONNX Runtime dynamic int8) are compared with e5np fp32 text by text (cosine)
on the STS-B test sentences, on real MiniLM and on the e5-large-size fixture. Each system runs in
its own process. Writes benchmarks/results/quality.json and quality.md. Needs the test and bench extras.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

import make_fixtures  # noqa: E402
from e5np import E5Model  # noqa: E402
from e5np.evaluation import NO_PREFIXES, evaluate_retrieval, evaluate_sts, read_qrels, read_sts  # noqa: E402
from e5np.evaluation import retrieval_metrics  # noqa: E402
from e5np.corpus import Fields, read_records  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
PUBLISHED = {"stsb_spearman": 0.82032, "scifact_ndcg10": 0.64508}  # MTEB, mteb 1.12.75


def scifact(data: Path) -> tuple[dict, list, list]:
    """SciFact's test qrels, the queries judged in them, and the corpus (title + " " + text)."""
    qrels = read_qrels(data / "scifact" / "qrels" / "test.tsv")
    queries = [r for r in read_records(data / "scifact" / "queries.jsonl", Fields(title=None)) if r.id in qrels]
    return qrels, queries, list(read_records(data / "scifact" / "corpus.jsonl"))


def exact_run(q: np.ndarray, d: np.ndarray, queries: list, docs: list, top_k: int = 100) -> dict:
    """{query id: {doc id: score}}: the top_k documents of each query by q @ d^T."""
    scores = q @ d.T
    top = np.argsort(-scores, axis=1)[:, :top_k]
    return {r.id: {docs[j].id: float(scores[i, j]) for j in top[i]} for i, r in enumerate(queries)}


def sentence_transformer(folder: Path, bf16: bool = False):
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    return SentenceTransformer(str(folder), device="cpu", model_kwargs={"dtype": torch.bfloat16} if bf16 else None)


def sentence_transformers_scores(folder: Path, data: Path, bf16: bool = False) -> dict:
    st = sentence_transformer(folder, bf16)
    gold, first, second = read_sts(data / "stsb" / "test.tsv")
    a = st.encode(first, batch_size=32, normalize_embeddings=True)
    b = st.encode(second, batch_size=32, normalize_embeddings=True)
    sts = float(spearmanr(gold, (a * b).sum(1))[0])

    qrels, queries, docs = scifact(data)
    q = st.encode([r.text for r in queries], batch_size=32, normalize_embeddings=True)
    d = st.encode([r.text for r in docs], batch_size=32, normalize_embeddings=True)
    run = exact_run(q, d, queries, docs)
    return {"stsb_spearman": sts, "scifact_ndcg10": retrieval_metrics(qrels, run, cutoffs=(10,))["ndcg@10"]}


def e5np_scifact_ndcg10(model: E5Model, data: Path) -> float:
    """SciFact nDCG@10 through e5np's streaming evaluation (MTEB's setting for MiniLM: no prefixes)."""
    return evaluate_retrieval(model, data / "scifact" / "corpus.jsonl", data / "scifact" / "queries.jsonl",
                              data / "scifact" / "qrels" / "test.tsv", NO_PREFIXES)["ndcg@10"]


def e5np_scores(folder: Path, data: Path, precision: str = "fp32") -> dict:
    model = E5Model(folder, precision=precision)
    sts = evaluate_sts(model, data / "stsb" / "test.tsv")["spearman"]
    return {"stsb_spearman": sts, "scifact_ndcg10": e5np_scifact_ndcg10(model, data)}


SYSTEMS = {"e5np": e5np_scores, "e5np bf16": lambda folder, data: e5np_scores(folder, data, "bf16"),
           "e5np int8": lambda folder, data: e5np_scores(folder, data, "int8"),
           "sentence-transformers": sentence_transformers_scores,
           "sentence-transformers bf16": lambda folder, data: sentence_transformers_scores(folder, data, bf16=True)}
# reduced-precision systems, compared with e5np fp32 text by text (peers as in benchmarks/peers.py)
COSINE_SYSTEMS = ["e5np-bf16", "e5np-int8", "transformers-bf16-sorted", "onnxruntime-int8-sorted"]
FIXTURES = {"all-MiniLM-L6-v2": make_fixtures.minilm, "e5-large-random": make_fixtures.e5_large_random}


def sts_sentences(data: Path) -> list[str]:
    _, first, second = read_sts(data / "stsb" / "test.tsv")
    return sorted(set(first) | set(second))


def embed_with(system: str, folder: Path, data: Path, out: Path) -> None:
    from peers import load_system
    np.save(out, load_system(system, str(folder))(sts_sentences(data)))


def cosines_to_fp32(folder: Path, data: Path, systems: list[str]) -> dict:
    """Per-text cosine of each reduced-precision system to e5np fp32 on the STS-B test sentences."""
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for system in ["e5np", *systems]:
            subprocess.run([sys.executable, __file__, "--embed", system, "--model", str(folder), "--data", str(data),
                            "--out", f"{tmp}/{system}.npy"], capture_output=True, text=True, check=True)
        reference = np.load(f"{tmp}/e5np.npy").astype(np.float64)
        for system in systems:
            cosine = (np.load(f"{tmp}/{system}.npy").astype(np.float64) * reference).sum(1)
            result[system] = {"min": float(cosine.min()), "mean": float(cosine.mean()), "texts": len(cosine)}
    return result


def main():

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None, help="default: the all-MiniLM-L6-v2 fixture")
    parser.add_argument("--data", type=Path, default=make_fixtures.SHARED / "data")
    parser.add_argument("--cosines-on", nargs="*", default=["all-MiniLM-L6-v2", "e5-large-random"],
                        help="fixtures on which to compare reduced precision with fp32, text by text")
    parser.add_argument("--systems", nargs="+", choices=sorted(SYSTEMS), default=list(SYSTEMS),
                        help="systems to score (default: all)")
    parser.add_argument("--update", action="store_true",
                        help="merge these systems' scores into the existing quality.json instead of starting anew")
    parser.add_argument("--cosine-systems", nargs="*", choices=COSINE_SYSTEMS, default=None,
                        help="reduced-precision systems to compare with fp32 text by text (default: all; none with --update)")
    parser.add_argument("--results", default="quality", help="results/NAME.json and .md (default: quality; "
                        "e.g. quality-zen4 for another machine's run)")
    parser.add_argument("--system", choices=sorted(SYSTEMS), help=argparse.SUPPRESS)  # one system, in this process
    parser.add_argument("--embed", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = args.model or make_fixtures.minilm()
    if args.system:
        print(json.dumps(SYSTEMS[args.system](folder, args.data)))
        return
    if args.embed:
        embed_with(args.embed, folder, args.data, args.out)
        return
    results, seconds = {}, {}
    for name in args.systems:  # each in its own process: two OpenMP thread pools in one process fight for the cores
        start = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--system", name, "--model", str(folder), "--data", str(args.data)],
                             capture_output=True, text=True, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        seconds[name] = time.perf_counter() - start
        print(name, results[name], f"{seconds[name]:.0f} s", flush=True)
    if args.update:
        report = json.loads((RESULTS / f"{args.results}.json").read_text())
        report["scores"] = {**report["scores"], **results}
        report["seconds"] = {**report["seconds"], **seconds}
        report["scores"]["published (MTEB)"] = report["scores"].pop("published (MTEB)")  # last row
        for model in args.cosines_on if args.cosine_systems else []:  # measured anew, merged
            report["cosine_to_e5np_fp32"][model].update(cosines_to_fp32(FIXTURES[model](), args.data, args.cosine_systems))
        report["updated"] = time.strftime("%Y-%m-%d") + ": " + ", ".join([*results, *(f"{s} cosines" for s in args.cosine_systems or [])])
        (RESULTS / f"{args.results}.json").write_text(json.dumps(report, indent=2))
        print(write_table(report, args.results))
        return
    results["published (MTEB)"] = PUBLISHED
    cosine_systems = COSINE_SYSTEMS if args.cosine_systems is None else args.cosine_systems
    cosines = {name: cosines_to_fp32(FIXTURES[name](), args.data, cosine_systems) for name in args.cosines_on}
    from e5np.runtime import choose_precision, cpuinfo
    report = {"date": time.strftime("%Y-%m-%d"), "model": str(folder), "cpu": cpuinfo("model name"),
              "bf16_path": choose_precision("bf16").path, "scores": results, "seconds": seconds,
              "cosine_to_e5np_fp32": cosines}
    (RESULTS / f"{args.results}.json").write_text(json.dumps(report, indent=2))
    print(write_table(report, args.results))


def write_table(report: dict, name: str = "quality") -> str:
    """NAME.md: the scores only (the seconds in NAME.json are not a speed benchmark)."""
    machine = f"; CPU {report['cpu']}, bf16 path {report['bf16_path']}" if "cpu" in report else ""
    lines = [f"all-MiniLM-L6-v2, {report['date']}" + (f" (updated {report['updated']})" if "updated" in report else "")
             + machine, "",
             "| system | STS-B test Spearman | SciFact nDCG@10 |", "|---|---|---|"]
    lines += [f"| {name} | {s['stsb_spearman']:.5f} | {s['scifact_ndcg10']:.5f} |" for name, s in report["scores"].items()]
    for model, systems in report.get("cosine_to_e5np_fp32", {}).items():
        lines += ["", f"Cosine to e5np fp32, per text, on the STS-B test sentences ({model}):", "",
                  "| system | min | mean |", "|---|---|---|"]
        lines += [f"| {name} | {c['min']:.6f} | {c['mean']:.6f} |" for name, c in systems.items()]
    table = "\n".join(lines) + "\n"
    (RESULTS / f"{name}.md").write_text(table)
    return table


if __name__ == "__main__":
    main()
