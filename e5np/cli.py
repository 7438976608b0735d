"""The ``e5np`` command line.

  e5np embed "query: summit define" "passage: ..." --model FOLDER_OR_ID
  cat texts.txt | e5np embed --model FOLDER --output vectors.npy
  e5np embed-corpus corpus.jsonl --output DIR --model FOLDER
  e5np evaluate-retrieval --corpus corpus.jsonl --queries queries.jsonl --qrels qrels/test.tsv --model FOLDER
  e5np evaluate-sts sts-test.tsv --model FOLDER
  e5np serve --model FOLDER [--port 8080] [--api-key KEY]
  e5np info [--precision bf16] [--model FOLDER]
  e5np warmup --model FOLDER_OR_ID [--precision fp32 --precision bf16]

Errors print one line naming the problem and exit with status 2.
"""

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from .engine import MAX_BATCH_TOKENS
from .errors import E5npError
from .runtime import PRECISIONS
from .serve import PREFIX_CHOICES
from .serve import add_arguments as add_serve_arguments


def role_text(model, name: str) -> str | None:
    """``--prefix query|passage|none``: E5's "query: " / "passage: ", or the model's own prompt for
    that role where its folder has prompts (bge's query instruction; nothing for its passages)."""
    if name == "none":
        return None
    return next(iter(model.role_prompt(name).values())) or None


def build_parser() -> argparse.ArgumentParser:
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--model", default=os.environ.get("E5NP_MODEL", "intfloat/e5-large"),
                       help="model folder or Hub id (default: $E5NP_MODEL or intfloat/e5-large)")
    model.add_argument("--batch-size", type=int, default=32)
    model.add_argument("--max-batch-tokens", type=int, default=MAX_BATCH_TOKENS,
                       help=f"tokens per forward pass at most; memory grows with it (default {MAX_BATCH_TOKENS})")
    model.add_argument("--max-length", type=int, default=None, help="truncate inputs to this many tokens")
    model.add_argument("--quiet", action="store_true", help="no progress bar")
    model.add_argument("--precision", choices=PRECISIONS, default="fp32",
                       help="fp32 (default, exact), bf16 (AMX; falls back to fp32 where the CPU cannot), auto")

    parser = argparse.ArgumentParser(prog="e5np", description="E5 text embeddings on the CPU, without torch.")
    commands = parser.add_subparsers(dest="command", required=True)

    embed = commands.add_parser("embed", parents=[model], help="embed texts given as arguments, or one per line on stdin")
    embed.add_argument("texts", nargs="*", help="texts to embed (none: read lines from stdin)")
    embed.add_argument("--prefix", choices=PREFIX_CHOICES, default="none",
                       help="add 'query: ' or 'passage: ' to texts that lack it (default: none, texts as given)")
    embed.add_argument("--output", "-o", help="write a float32 .npy file instead of JSON lines")
    embed.add_argument("--no-normalize", action="store_true", help="skip L2 normalization (default: as the model folder says; E5: normalized)")

    corpus = commands.add_parser("embed-corpus", parents=[model], help="embed a JSONL/CSV/TSV/text corpus into .npy shards")
    corpus.add_argument("input", type=Path)
    corpus.add_argument("--output", "-o", type=Path, required=True, help="output folder (resumed if it holds this run)")
    corpus.add_argument("--text-field", default="text")
    corpus.add_argument("--id-field", default="_id")
    corpus.add_argument("--title-field", default="title", help="joined before the text with a space ('' for none)")
    corpus.add_argument("--prefix", choices=PREFIX_CHOICES, default="passage")
    corpus.add_argument("--shard-size", type=int, default=10_000, help="rows per .npy shard")
    corpus.add_argument("--on-error", choices=["fail", "skip"], default="fail", help="what to do with a bad row")
    corpus.add_argument("--format", choices=["npy", "parquet"], default=None,
                        help="npy: embeddings-N.npy + ids-N.jsonl (default without --ray); parquet: part-N.parquet "
                             "planned shards, the same files with or without --ray (the default with it)")
    corpus.add_argument("--ray", metavar="ADDRESS", default=None,
                        help="embed on Ray (pip install 'e5np[ray]'): auto, local[:CPUS], or a cluster address")
    corpus.add_argument("--actors", type=int, default=None, help="Ray actors (default: as many as the CPUs hold)")
    corpus.add_argument("--threads-per-actor", type=int, default=1, help="CPUs and threads of each Ray actor")
    corpus.add_argument("--ship-model", choices=["auto", "always", "never"], default="auto",
                        help="the model's files through Ray's object store to a copy on each node: auto (when the "
                             "cluster has more than one node, used where a node's --model path differs), always, never")

    retrieval = commands.add_parser("evaluate-retrieval", parents=[model], help="nDCG@10, MAP@100, Recall@100 on a BEIR dataset")
    retrieval.add_argument("--corpus", type=Path, required=True)
    retrieval.add_argument("--queries", type=Path, required=True)
    retrieval.add_argument("--qrels", type=Path, required=True)
    retrieval.add_argument("--prefixes", choices=["e5", "none"], default="e5",
                           help="e5: the model's own query/passage prompts where its folder has them (bge), else "
                                "'query: ' and 'passage: ' (E5 models); none: texts as given (e.g. all-MiniLM-L6-v2)")
    retrieval.add_argument("--top-k", type=int, default=100)
    retrieval.add_argument("--json", action="store_true", help="print the metrics as JSON")

    sts = commands.add_parser("evaluate-sts", parents=[model], help="Spearman/Pearson of cosine vs gold on an STS TSV")
    sts.add_argument("file", type=Path, help="TSV with columns score, sentence1, sentence2")
    sts.add_argument("--prefix", choices=PREFIX_CHOICES, default="none")
    sts.add_argument("--json", action="store_true", help="print the metrics as JSON")

    serve = commands.add_parser("serve", help="an HTTP server speaking OpenAI's embeddings API and TEI's routes")
    add_serve_arguments(serve)

    info = commands.add_parser("info", help="the CPU, threads, and which precision path would run and why")
    info.add_argument("--precision", choices=PRECISIONS, default="auto")
    info.add_argument("--model", default=None, help="also say whether this model's packed weights are cached")
    info.add_argument("--measure", action="store_true",
                      help="time each GEMM path this CPU has (a few seconds) and cache the figures for precision='auto'")
    warmup = commands.add_parser("warmup", help="compile the kernels and pack the weights a model needs on this CPU, "
                                                "into $E5NP_CACHE_DIR (for images and fleets)")
    warmup.add_argument("--model", default=os.environ.get("E5NP_MODEL", "intfloat/e5-large"),
                        help="model folder or Hub id (default: $E5NP_MODEL or intfloat/e5-large)")
    warmup.add_argument("--precision", choices=PRECISIONS, action="append",
                        help="a path to warm (repeatable; default: fp32, and bf16 where this CPU has it)")
    return parser


def load_model(args):
    from .engine import E5Model

    if args.batch_size < 1:
        raise E5npError(f"--batch-size must be at least 1, not {args.batch_size}")
    if args.max_batch_tokens < 1:
        raise E5npError(f"--max-batch-tokens must be at least 1, not {args.max_batch_tokens}")
    return E5Model.from_pretrained(args.model, max_length=args.max_length, precision=args.precision,
                                   max_batch_tokens=args.max_batch_tokens)


def embed(args) -> int:
    texts = args.texts or [line.rstrip("\r\n") for line in sys.stdin]
    if args.output and not args.output.endswith(".npy"):
        raise E5npError(f"--output {args.output}: the file name must end in .npy")
    model = load_model(args)
    vectors = model.encode(texts, batch_size=args.batch_size, normalize=False if args.no_normalize else None,
                           prefix=role_text(model, args.prefix), show_progress_bar=not args.quiet and len(texts) > 1000)
    if args.output:
        np.save(args.output, np.asarray(vectors))
        print(f"wrote {len(texts)} x {model.hidden_size} float32 to {args.output}", file=sys.stderr)
    else:
        for row in vectors:
            sys.stdout.write("[" + ", ".join(str(v) for v in row) + "]\n")
    return 0


def embed_corpus(args) -> int:
    from .corpus import Fields
    from .corpus import embed_corpus as run

    if args.shard_size < 1:
        raise E5npError(f"--shard-size must be at least 1, not {args.shard_size}")
    model = load_model(args)
    fields = Fields(text=args.text_field, id=args.id_field, title=args.title_field or None)
    options = dict(fields=fields, prefix=role_text(model, args.prefix), batch_size=args.batch_size, on_error=args.on_error)
    if args.ray:
        if args.format == "npy":
            raise E5npError("--ray writes Parquet shards (--format parquet)")
        from .distributed import embed_corpus_ray
        summary = embed_corpus_ray(model, args.input, args.output, address=args.ray, actors=args.actors,
                                   threads_per_actor=args.threads_per_actor, shard_rows=args.shard_size,
                                   ship_model={"auto": "auto", "always": True, "never": False}[args.ship_model], **options)
    elif args.format == "parquet":
        from .corpus import embed_corpus_parquet
        summary = embed_corpus_parquet(model, args.input, args.output, shard_rows=args.shard_size, **options)
    else:
        summary = run(model, args.input, args.output, shard_size=args.shard_size, progress=not args.quiet, **options)
    resumed = f", resumed after line {summary.resumed_at_line}" if summary.resumed_at_line else ""
    print(f"e5np: {summary.count} texts embedded into {args.output} ({summary.truncated} truncated at "
          f"{model.max_length} tokens, {len(summary.skipped)} bad rows skipped) in {summary.seconds:.1f} s{resumed}",
          file=sys.stderr)
    return 0


def evaluate_retrieval(args) -> int:
    from .evaluation import NO_PREFIXES, Prefixes
    from .evaluation import evaluate_retrieval as run

    model = load_model(args)
    prefixes = Prefixes(role_text(model, "query"), role_text(model, "passage")) if args.prefixes == "e5" else NO_PREFIXES
    scores = run(model, args.corpus, args.queries, args.qrels, prefixes, top_k=args.top_k,
                 batch_size=args.batch_size, progress=not args.quiet)
    _print_scores(scores, args.json)
    return 0


def evaluate_sts(args) -> int:
    from .evaluation import evaluate_sts as run

    model = load_model(args)
    scores = run(model, args.file, prefix=role_text(model, args.prefix), batch_size=args.batch_size)
    _print_scores(scores, args.json)
    return 0


def info(args) -> int:
    import importlib.metadata
    import platform

    import numba

    from .runtime import (AMX_FLAGS, AVX512_BF16_FLAG, amx_problem, avx512_bf16_problem, choose_precision, compile_features,
                          compile_tile, cpu_flags, cpu_name, cpuinfo, gemm_probe_file, measure_gemms, measured_gemms,
                          kernel_cache_dir, kernels_built_for, other_target, usable_cpus)

    flags = cpu_flags()
    if args.measure:
        paths = ["fp32"] + [p for p, problem in (("bf16-amx", amx_problem), ("bf16-avx512", avx512_bf16_problem))
                            if problem() is None]
        measure_gemms(paths)
    choice = choose_precision(args.precision)
    print(f"e5np {importlib.metadata.version('e5np')}, numba {numba.__version__}, numpy {np.__version__}, "
          f"Python {platform.python_version()} on {platform.system()} {platform.machine()}")
    print(f"cpu: {cpu_name()}")
    source = "/proc/cpuinfo" if cpuinfo("flags") else "LLVM's host features"
    print("cpu flags: " + ", ".join(f"{f} {'yes' if f in flags else 'no'}"
                                    for f in (*AMX_FLAGS, AVX512_BF16_FLAG, "avx512f", "avx2", "fma")) + f" (from {source})")
    arch, target, _ = compile_features()
    tile = compile_tile()
    whose = "this CPU" if other_target() is None else "NUMBA_CPU_NAME / NUMBA_CPU_FEATURES"
    print(f"kernels compiled for: {target} ({arch}, {whose}); GEMM register tile {tile.mr} x {tile.nr} ({tile.isa})")
    cpus, why = usable_cpus()
    print(f"threads: {cpus} by default ({why}); each forward pass runs on 1 or all of them, whichever "
          "measured faster for passes of its size")
    rates = measured_gemms()
    if rates:
        print("GEMM alone, e5-large's FFN shapes: " + ", ".join(f"{p} {r:.0f} GFLOP/s" for p, r in rates.items())
              + f" (cached in {gemm_probe_file()})")
    else:
        print("GEMM paths not measured on this CPU yet: e5np info --measure")
    print(f"precision {args.precision!r} -> {choice.path}: {choice.reason}")
    cached, cpus = Path(kernel_cache_dir()), kernels_built_for()
    kernels = len(list(cached.glob("*.nbi")))  # one Numba index per cached kernel
    print(f"kernel cache: {cached}: " + (f"{kernels} kernels, compiled for {'; '.join(cpus) or 'CPUs not recorded'}"
                                         if kernels else "empty (the first run compiles)"))
    if args.model:
        from .engine import packed_weights_status
        print(f"packed weights of {args.model} at {choice.path}: {packed_weights_status(args.model, args.precision)}")
    return 0


def warmup(args) -> int:
    from .warmup import default_precisions, warm_up

    warm_up(args.model, args.precision or default_precisions())
    return 0


def serve(args) -> int:
    from .serve import from_arguments

    try:
        from .serve import serve as run
    except ImportError as e:
        raise E5npError(f"e5np serve needs the serve extra ({e.name} is missing): pip install 'e5np[serve]'") from None
    return run(from_arguments(args))


def _print_scores(scores: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(scores))
        return
    for name, value in scores.items():
        print(f"{name}\t{value:.5f}" if isinstance(value, float) else f"{name}\t{value}")


COMMANDS = {"embed": embed, "embed-corpus": embed_corpus, "evaluate-retrieval": evaluate_retrieval,
            "evaluate-sts": evaluate_sts, "serve": serve, "info": info, "warmup": warmup}


def main(argv=None) -> int:
    logging.basicConfig(format="e5np: %(message)s", level=logging.WARNING)
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("e5np: interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    except (E5npError, ValueError, TypeError, OSError) as e:
        print(f"e5np: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
