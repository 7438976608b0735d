"""Corpus embedding on Ray Data (``e5np.distributed``): the same Parquet bytes as a local run,
nothing lost or doubled when an actor or the driver dies, threads as Ray assigned them.

A local Ray of 3 CPUs (no dashboard, a 512 MiB object store) for the module; every test has a
timeout, since failures here show as hangs."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("pyarrow")

import linux_only  # noqa: E402
from e5np import E5Model  # noqa: E402
from e5np.corpus import CorpusError, read_corpus  # noqa: E402
from e5np.distributed import embed_corpus_ray, embed_dataset, ray_runner  # noqa: E402
from e5np.corpus import embed_corpus_parquet  # noqa: E402
from texts import LONG, MULTILINGUAL  # noqa: E402

pytestmark = pytest.mark.timeout(300)
SHARD_ROWS = 40


def corpus_texts() -> list[str]:
    texts = [f"Passage {i}: " + "mountains, rivers and the leaders of governments " * (i % 13) for i in range(230)]
    return texts + MULTILINGUAL + [LONG, ""]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=3, include_dashboard=False, object_store_memory=512 * 2**20, log_to_driver=False,
             configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    rows = [json.dumps({"_id": f"d{i}", "title": "", "text": t}) for i, t in enumerate(corpus_texts())]
    rows.insert(57, "{not json")  # a bad row, skipped and listed
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model(minilm_folder):
    return E5Model(minilm_folder)


@pytest.fixture(scope="module")
def local_run(model, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    embed_corpus_parquet(model, corpus, out, shard_rows=SHARD_ROWS, on_error="skip")
    return out


def parquet_files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("part-*.parquet"))}


def test_ray_writes_the_local_runs_bytes(cluster, model, corpus, local_run, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "ray"
    summary = embed_corpus_ray(model, corpus, out, actors=2, threads_per_actor=1, shard_rows=SHARD_ROWS, on_error="skip")
    assert parquet_files(out) == parquet_files(local_run) and len(parquet_files(out)) == 7
    ids, vectors = read_corpus(out)
    texts = corpus_texts()
    assert ids == [f"d{i}" for i in range(len(texts))] and summary.count == len(texts)
    assert np.array_equal(vectors, model.encode(texts, prefix="passage: "))
    schema = pq.read_schema(out / "part-000000.parquet")
    assert (str(schema.field("id").type), str(schema.field("embedding").type), str(schema.field("truncated").type)) == \
        ("string", "fixed_size_list<element: float>[384]", "bool")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and [s["line"] for s in manifest["skipped"]] == [58]
    assert summary.truncated == 1 and {(s["threads"], s["numba_threads"]) for s in manifest["shards"]} == {(1, 1)}


def test_rerun_skips_done_shards_and_other_settings_are_refused(cluster, model, corpus, tmp_path):
    out = tmp_path / "ray"
    embed_corpus_ray(model, corpus, out, actors=1, shard_rows=SHARD_ROWS, on_error="skip")
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*")}
    embed_corpus_ray(model, corpus, out, actors=1, shard_rows=SHARD_ROWS, on_error="skip")
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("part-*")} == stamps
    with pytest.raises(CorpusError, match="prefix"):
        embed_corpus_ray(model, corpus, out, actors=1, shard_rows=SHARD_ROWS, on_error="skip", prefix="query: ")


def test_an_actor_killed_mid_shard_loses_and_doubles_nothing(cluster, model, corpus, local_run, tmp_path):
    out = tmp_path / "ray"
    crash = tmp_path / "crashed"
    embed_corpus_ray(model, corpus, out, actors=2, shard_rows=SHARD_ROWS, on_error="skip",
                     env={"E5NP_TEST_CRASH_ONCE": str(crash)})
    assert crash.exists(), "the test hook did not kill an actor"
    assert parquet_files(out) == parquet_files(local_run)


def test_threads_follow_the_cpus_ray_assigned(cluster, model, corpus, tmp_path):
    out = tmp_path / "ray"
    embed_corpus_ray(model, corpus, out, actors=1, threads_per_actor=2, shard_rows=SHARD_ROWS, on_error="skip")
    shards = json.loads((out / "manifest.json").read_text())["shards"]
    assert {(s["threads"], s["numba_threads"]) for s in shards} == {(2, 2)}


def test_a_pool_larger_than_the_cluster_is_refused(cluster, model, corpus, tmp_path):
    started = time.monotonic()
    with pytest.raises(CorpusError, match="need 4 CPUs, but the Ray cluster has 3"):
        embed_corpus_ray(model, corpus, tmp_path / "ray", actors=2, threads_per_actor=2, shard_rows=SHARD_ROWS)
    assert time.monotonic() - started < 30


def test_a_node_whose_model_files_differ_is_refused_by_name(cluster, model, minilm_folder, corpus, tmp_path):
    """The actors' path holds other files than the driver's (one changed config.json) and nothing
    was shipped: a CorpusError naming the file, not Ray's error with the actor's traceback."""
    other = tmp_path / "other-model"
    for path in minilm_folder.rglob("*"):
        if path.is_file():
            target = other / path.relative_to(minilm_folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    (other / "config.json").unlink()
    (other / "config.json").write_text((minilm_folder / "config.json").read_text() + "\n")
    runner = ray_runner(str(other), {}, actors=1, ship_model=False)
    started = time.monotonic()
    with pytest.raises(CorpusError, match=r"differs from the driver's model files \(\['config.json'\]\).*ship"):
        embed_corpus_parquet(model, corpus, tmp_path / "ray", shard_rows=SHARD_ROWS, on_error="skip", runner=runner)
    assert time.monotonic() - started < 60


def test_embed_dataset_equals_encode(cluster, model, minilm_folder):
    texts = corpus_texts()[:120]
    ds = ray.data.from_items([{"id": f"x{i}", "text": t} for i, t in enumerate(texts)])
    rows = embed_dataset(ds, minilm_folder, prefix="query: ", actors=1, batch_size=50).take_all()
    rows.sort(key=lambda r: int(r["id"][1:]))  # Ray keeps no order: join on id
    assert [r["id"] for r in rows] == [f"x{i}" for i in range(len(texts))]
    assert np.array_equal(np.stack([r["embedding"] for r in rows]), model.encode(texts, prefix="query: "))


@linux_only.killpg
def test_driver_killed_then_rerun_equals_an_uninterrupted_run(minilm_folder, corpus, local_run, tmp_path):
    """The CLI with its own local Ray, killed with SIGKILL once a shard is recorded, then run again."""
    out = tmp_path / "ray"
    command = [sys.executable, "-m", "e5np.cli", "embed-corpus", str(corpus), "--output", str(out), "--model",
               str(minilm_folder), "--ray", "local:2", "--actors", "1", "--shard-size", str(SHARD_ROWS),
               "--on-error", "skip", "--quiet"]
    first = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline and first.poll() is None:
            manifest = out / "manifest.json"
            if manifest.exists() and json.loads(manifest.read_text())["shards"]:
                break
            time.sleep(0.2)
        assert first.poll() is None, f"the first run ended before it could be killed: {first.stderr.read().decode()}"
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the driver and the Ray it started
        first.wait()
    done = len(json.loads((out / "manifest.json").read_text())["shards"])
    assert 0 < done < 7
    second = subprocess.run(command, capture_output=True, text=True, timeout=250)
    assert second.returncode == 0, second.stderr
    assert parquet_files(out) == parquet_files(local_run)
