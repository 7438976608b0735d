"""The ``e5np`` command line.

  e5np embed "query: summit define" "passage: ..." --model FOLDER_OR_ID
  cat texts.txt | e5np embed --model FOLDER --output vectors.npy

Prints one JSON array per text (in input order), or writes a float32 [n, hidden] .npy file.
"""

import argparse
import logging
import os
import sys

import numpy as np

from .errors import E5npError

PREFIXES = {"none": None, "query": "query: ", "passage": "passage: "}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="e5np", description="E5 text embeddings on the CPU, without torch.")
    commands = parser.add_subparsers(dest="command", required=True)
    embed = commands.add_parser("embed", help="embed texts given as arguments, or one per line on stdin")
    embed.add_argument("texts", nargs="*", help="texts to embed (none: read lines from stdin)")
    embed.add_argument("--model", default=os.environ.get("E5NP_MODEL", "intfloat/e5-large"),
                       help="model folder or Hub id (default: $E5NP_MODEL or intfloat/e5-large)")
    embed.add_argument("--prefix", choices=sorted(PREFIXES), default="none",
                       help="add 'query: ' or 'passage: ' to texts that lack it (default: none, texts as given)")
    embed.add_argument("--output", "-o", help="write a float32 .npy file instead of JSON lines")
    embed.add_argument("--batch-size", type=int, default=32)
    embed.add_argument("--max-length", type=int, default=None, help="truncate inputs to this many tokens")
    embed.add_argument("--no-normalize", action="store_true", help="skip L2 normalization")
    return parser


def embed(args) -> int:
    from .model import E5Model

    texts = args.texts or [line.rstrip("\r\n") for line in sys.stdin]
    if args.output and not args.output.endswith(".npy"):
        raise E5npError(f"--output {args.output}: the file name must end in .npy")
    model = E5Model.from_pretrained(args.model, max_length=args.max_length)
    vectors = model.encode(texts, batch_size=args.batch_size, normalize=not args.no_normalize,
                           prefix=PREFIXES[args.prefix])
    if args.output:
        np.save(args.output, np.asarray(vectors))
        print(f"wrote {len(texts)} x {model.hidden_size} float32 to {args.output}", file=sys.stderr)
    else:
        out = sys.stdout
        for row in vectors:
            out.write("[" + ", ".join(str(v) for v in row) + "]\n")
    return 0


def main(argv=None) -> int:
    logging.basicConfig(format="e5np: %(message)s", level=logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        return embed(args)
    except (E5npError, ValueError, TypeError, OSError) as e:
        print(f"e5np: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
