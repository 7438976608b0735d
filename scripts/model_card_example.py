"""The E5 model card's example, through e5np: prints the query x passage score matrix.

  python scripts/model_card_example.py                      # intfloat/e5-large (Hub or cache)
  python scripts/model_card_example.py /path/to/e5-large    # a local folder, no Hub needed
"""

import sys

import numpy as np

from e5np import E5Model, ModelNotFoundError

queries = ["how much protein should a female eat", "summit define"]
passages = [
    "As a general guideline, the CDC's average requirement of protein for women ages 19 to 70 is 46 grams per day. "
    "But, as you can see from this chart, you'll need to increase that if you're expecting or training for a marathon. "
    "Check out the chart below to see how much protein you should be eating each day.",
    "Definition of summit for English Language Learners. : 1 the highest point of a mountain : the top of a mountain. "
    ": 2 the highest level. : 3 a meeting or series of meetings between the leaders of two or more governments.",
]


def main(model_id: str) -> int:
    try:
        model = E5Model.from_pretrained(model_id)
    except ModelNotFoundError as e:
        print(f"{e}\n\nWith a folder: python {sys.argv[0]} /path/to/model-folder", file=sys.stderr)
        return 2
    q = model.encode_queries(queries)
    p = model.encode_passages(passages)
    scores = q @ p.T * 100
    np.set_printoptions(precision=4, suppress=True)
    print(f"{model}\nscores (queries x passages):\n{np.asarray(scores)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "intfloat/e5-large"))
