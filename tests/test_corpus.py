"""embed-corpus: readers, shards and manifest, bad rows, resume after a kill, refusal, bounded memory."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import linux_only
from e5np import E5Model
from e5np.corpus import CorpusError, embed_corpus, read_corpus
from e5np.corpus import ByteRange, Fields, Record, read_records


def run_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "e5np", *map(str, args)], capture_output=True, text=True, **kwargs)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [{"_id": f"doc{i}", "title": f"Title {i}" if i % 3 else "", "text": f"document number {i} " * (1 + i % 7)}
        for i in range(23)]


@pytest.fixture(scope="module")
def model(tiny_folder):
    return E5Model(tiny_folder)


def test_readers_join_title_and_text(tmp_path):
    jsonl = write_jsonl(tmp_path / "c.jsonl", ROWS[:3])
    assert [r.text for r in read_records(jsonl)] == [ROWS[0]["text"], f"Title 1 {ROWS[1]['text']}", f"Title 2 {ROWS[2]['text']}"]
    tsv = tmp_path / "c.tsv"
    tsv.write_text('id\ttitle\tbody\n7\tA "quoted" title\tthe body\n8\t\tonly body\n', encoding="utf-8")
    got = list(read_records(tsv, Fields(text="body", id="id", title="title")))
    assert got == [Record(2, "7", 'A "quoted" title the body'), Record(3, "8", "only body")]
    csv_path = tmp_path / "c.csv"
    csv_path.write_text('_id,text\n1,"hello, world"\n', encoding="utf-8")
    assert list(read_records(csv_path)) == [Record(2, "1", "hello, world")]
    txt = tmp_path / "c.txt"
    txt.write_text("first\n\nthird\n", encoding="utf-8")
    assert [(r.id, r.text) for r in read_records(txt)] == [("0", "first"), ("1", ""), ("2", "third")]


def test_bad_rows_are_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"_id": "1", "text": "ok"}\n{not json}\n{"_id": "3"}\n{"_id": "4", "text": 5}\n[1]\n', encoding="utf-8")
    got = list(read_records(path))
    assert isinstance(got[0], Record)
    assert [(b.line, b.reason.split(" (")[0]) for b in got[1:]] == [
        (2, "invalid JSON"), (3, "missing field 'text'"), (4, "field 'text' is int, not text"), (5, "not a JSON object")]


def test_shards_ids_and_manifest(tmp_path, model, tiny_folder):
    corpus = write_jsonl(tmp_path / "corpus.jsonl", ROWS)
    result = run_cli("embed-corpus", corpus, "--output", tmp_path / "out", "--model", tiny_folder, "--shard-size", 10)
    assert result.returncode == 0, result.stderr
    assert "23 texts embedded" in result.stderr
    ids, vectors = read_corpus(tmp_path / "out")
    assert ids == [r["_id"] for r in ROWS]
    texts = [(f"{r['title']} {r['text']}" if r["title"] else r["text"]) for r in ROWS]
    assert np.array_equal(vectors, model.encode(texts, prefix="passage: "))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["count"] == 23
    assert [s["rows"] for s in manifest["shards"]] == [10, 10, 3]
    settings = manifest["settings"]
    assert settings["dimension"] == 64 and settings["prefix"] == "passage: " and settings["max_length"] == 512
    assert "model.safetensors" in settings["model_files"] and settings["e5np_version"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["manifest.json"] + [f"{kind}-0000{i}.{ext}" for i in range(3) for kind, ext in (("embeddings", "npy"), ("ids", "jsonl"))])


def test_on_error_fail_and_skip(tmp_path, tiny_folder):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "1", "text": "ok"}\n{oops\n{"_id": "3", "text": "fine"}\n', encoding="utf-8")
    fail = run_cli("embed-corpus", corpus, "-o", tmp_path / "a", "--model", tiny_folder, "--quiet")
    assert fail.returncode == 2 and "line 2: invalid JSON" in fail.stderr and "Traceback" not in fail.stderr
    skip = run_cli("embed-corpus", corpus, "-o", tmp_path / "b", "--model", tiny_folder, "--quiet", "--on-error", "skip")
    assert skip.returncode == 0, skip.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["count"] == 2 and [s["line"] for s in manifest["skipped"]] == [2]
    assert read_corpus(tmp_path / "b")[0] == ["1", "3"]


def test_other_arguments_over_existing_output_are_refused(tmp_path, model):
    corpus = write_jsonl(tmp_path / "c.jsonl", ROWS[:5])
    embed_corpus(model, corpus, tmp_path / "out", progress=False)
    with pytest.raises(CorpusError, match="other settings.*prefix"):
        embed_corpus(model, corpus, tmp_path / "out", prefix="query: ", progress=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file").write_text("x")
    with pytest.raises(CorpusError, match="not an e5np corpus folder"):
        embed_corpus(model, corpus, tmp_path / "junk", progress=False)


@linux_only.sigkill
def test_resume_after_kill_equals_uninterrupted_run(tmp_path, tiny_folder):
    rows = [{"_id": str(i), "text": f"text {i} " * (1 + i % 40)} for i in range(3000)]
    corpus = write_jsonl(tmp_path / "c.jsonl", rows)
    args = ["embed-corpus", corpus, "--model", tiny_folder, "--shard-size", 100, "--quiet"]
    full = run_cli(*args, "-o", tmp_path / "full")
    assert full.returncode == 0, full.stderr

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "e5np", *map(str, args), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        manifest = out / "manifest.json"
        if manifest.exists() and len(json.loads(manifest.read_text())["shards"]) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"], "the run finished before it could be killed; the test proves nothing"
    for shard in manifest["shards"]:  # what the manifest lists is complete under its final name
        assert np.load(out / shard["embeddings"]).shape == (shard["rows"], 64)

    resumed = run_cli(*args, "-o", out)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after line" in resumed.stderr
    full_ids, full_vectors = read_corpus(tmp_path / "full")
    ids, vectors = read_corpus(out)
    assert ids == full_ids and np.array_equal(vectors, full_vectors)
    assert not list(out.glob("*.tmp"))


def test_ctrl_c_stops_cleanly_and_the_rerun_continues(tmp_path, tiny_folder):
    # 20,000 rows: enough that the run cannot end between its first shard and the signal (3,000 did, once)
    rows = [{"_id": str(i), "text": f"text {i} " * (1 + i % 40)} for i in range(20000)]
    corpus = write_jsonl(tmp_path / "c.jsonl", rows)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "e5np", "embed-corpus", str(corpus), "--model", str(tiny_folder),
            "--shard-size", "100", "--quiet", "-o", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not ((out / "manifest.json").exists()
                                          and json.loads((out / "manifest.json").read_text())["shards"]):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted; run the same command again to continue" in stderr
    assert "Traceback" not in stderr
    rerun = subprocess.run(args, capture_output=True, text=True)
    assert rerun.returncode == 0 and "resumed after line" in rerun.stderr
    assert read_corpus(out)[0] == [r["_id"] for r in rows]


PEAK_RSS = """
import sys, resource
from e5np import E5Model
from e5np.corpus import embed_corpus
embed_corpus(E5Model(sys.argv[1]), sys.argv[2], sys.argv[3], prefix=None, batch_size=64, shard_size=5000, progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@linux_only.getrusage
def test_memory_stays_bounded_on_a_large_corpus(tmp_path, tiny_folder):
    """Peak RSS on 200k lines is within a few MB of the peak on 20k lines: nothing grows with the corpus."""
    peaks = {}
    for lines in (20_000, 200_000):
        corpus = tmp_path / f"c{lines}.txt"
        corpus.write_text("".join(f"line {i} of a generated corpus\n" for i in range(lines)))
        result = subprocess.run([sys.executable, "-c", PEAK_RSS, str(tiny_folder), str(corpus), str(tmp_path / f"o{lines}")],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        peaks[lines] = int(result.stdout.split()[-1]) / 1024  # MiB
    print(f"\npeak RSS: 20k lines {peaks[20_000]:.0f} MiB, 200k lines {peaks[200_000]:.0f} MiB")
    assert peaks[200_000] < peaks[20_000] + 25, peaks


@pytest.mark.parametrize("fmt", ["jsonl", "tsv", "txt"])
def test_planned_parts_read_the_same_records_as_the_whole_file(tmp_path, fmt):
    """e5np.corpus.parquet_shards plans byte ranges; each part read alone gives the records the whole file gives, numbered alike."""
    from e5np.corpus.parquet_shards import plan_shards

    path = tmp_path / f"c.{fmt}"
    if fmt == "jsonl":
        write_jsonl(path, ROWS)
        path.write_text(path.read_text() + "\n{bad\n", encoding="utf-8")
    elif fmt == "tsv":
        path.write_text("_id\ttitle\ttext\n" + "".join(f"{r['_id']}\t{r['title']}\t{r['text']}\n" for r in ROWS))
    else:
        path.write_text("".join(r["text"] + "\n" for r in ROWS) + "naïve Ünïcode\n")
    kind = {"txt": "text"}.get(fmt, fmt)
    whole = list(read_records(path, fmt=kind))
    shards = plan_shards(path, kind, 5)
    parts = [item for s in shards for item in read_records(path, fmt=kind, part=ByteRange(s.start, s.stop, s.first_line, s.header))]
    assert parts == whole and len(shards) == -(-len(whole) // 5)


def test_parquet_output_equals_npy_output_and_csv_is_refused(tmp_path, model):
    from e5np.corpus import embed_corpus_parquet

    corpus = write_jsonl(tmp_path / "corpus.jsonl", ROWS)
    embed_corpus(model, corpus, tmp_path / "npy", shard_size=7, progress=False)
    embed_corpus_parquet(model, corpus, tmp_path / "parquet", shard_rows=7)
    npy, parquet = read_corpus(tmp_path / "npy"), read_corpus(tmp_path / "parquet")
    assert npy[0] == parquet[0] and np.array_equal(npy[1], parquet[1])
    csv_path = tmp_path / "c.csv"
    csv_path.write_text('_id,text\n1,"hello, world"\n', encoding="utf-8")
    with pytest.raises(CorpusError, match="quoted newlines"):
        embed_corpus_parquet(model, csv_path, tmp_path / "csv")
    result = run_cli("embed-corpus", corpus, "--output", tmp_path / "cli", "--model", model.folder, "--format",
                     "parquet", "--shard-size", "7", "--quiet")
    assert result.returncode == 0, result.stderr
    assert all((tmp_path / "cli" / f).read_bytes() == (tmp_path / "parquet" / f).read_bytes()
               for f in ("part-000000.parquet", "part-000003.parquet"))
