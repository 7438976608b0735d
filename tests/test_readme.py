"""The README's examples run: its Python blocks on the MiniLM fixture, and every `e5np ...` command
line, parsed by the CLI's own parser (a renamed option fails here, not for a user) and, where it
finishes on its own, run on small files."""

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from e5np import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def command_lines() -> list[str]:
    lines = [line.split("  #")[0].strip() for block in blocks("bash") for line in block.splitlines()]
    return [line for line in lines if line.startswith("e5np ")]


@pytest.fixture(scope="module")
def small_files(tmp_path_factory, minilm_folder):
    d = tmp_path_factory.mktemp("readme")
    (d / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "title": "", "text": t}) + "\n"
                                            for i, t in enumerate(["Protein needs of women.", "A summit is a top."])))
    (d / "queries.jsonl").write_text(json.dumps({"_id": "q0", "text": "how much protein should a female eat"}) + "\n")
    (d / "qrels").mkdir()
    (d / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\n")
    (d / "sts-test.tsv").write_text("score\tsentence1\tsentence2\n5.0\tA man plays.\tA man is playing.\n"
                                    "0.5\tA cat sleeps.\tStocks fell today.\n3.0\tA dog runs.\tA dog is running fast.\n")
    return {"FOLDER": str(minilm_folder), "corpus.jsonl": str(d / "corpus.jsonl"), "queries.jsonl": str(d / "queries.jsonl"),
            "qrels/test.tsv": str(d / "qrels" / "test.tsv"), "sts-test.tsv": str(d / "sts-test.tsv"),
            "vectors/": str(d / "vectors"), "out.npy": str(d / "out.npy"), "KEY": "secret"}


def as_argv(line: str, files: dict) -> list[str]:
    """Optional groups taken with their first choice ("[--prefix query|passage]" -> "--prefix query"),
    placeholders replaced by the fixture and small files."""
    line = re.sub(r"\[([^\]]*)\]", lambda m: m.group(1).split("|")[0], line)
    return [files.get(word, word) for word in shlex.split(line)[1:]]


def test_readme_has_examples():
    assert blocks("python") and len(command_lines()) >= 6


def test_python_blocks_run_on_the_fixture(minilm_folder):
    for block in blocks("python"):
        code = block.replace('"intfloat/e5-large"', repr(str(minilm_folder)))
        scope: dict = {}
        exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
        if "scores" in scope:
            assert scope["scores"].shape == (1, 1) and np.isfinite(scope["scores"]).all()


@pytest.mark.parametrize("line", command_lines())
def test_command_lines_parse_and_run(line, small_files, capsys):
    argv = as_argv(line, small_files)
    args = cli.build_parser().parse_args(argv)  # raises SystemExit on an option the CLI does not have
    if args.command == "serve" or getattr(args, "ray", None):
        return  # serve runs until stopped (tests/test_serve.py starts it); --ray runs in tests/test_distributed.py
    assert cli.main(argv + (["--quiet"] if hasattr(args, "quiet") else [])) == 0, capsys.readouterr().err
