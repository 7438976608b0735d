"""Ray with more than one node (``ray.cluster_utils.Cluster``: a head with no CPU and two worker
nodes of one CPU, all on this machine): a node removed mid-run, and the model's files shipped
through the object store to a node-local copy instead of read from the driver's path."""

import json
import os
import threading
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("pyarrow")

from ray.cluster_utils import Cluster  # noqa: E402

from e5np import E5Model  # noqa: E402
from e5np.corpus import model_hashes, read_corpus  # noqa: E402
from e5np.distributed import embed_corpus_ray, embed_dataset  # noqa: E402
from e5np.distributed.node_copies import CACHE_VARIABLE  # noqa: E402
from e5np.corpus import embed_corpus_parquet  # noqa: E402

pytestmark = pytest.mark.timeout(400)
SHARD_ROWS = 20


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    return tmp_path_factory.mktemp("node-copies")


@pytest.fixture(scope="module")
def cluster(copies):
    saved = os.environ.get(CACHE_VARIABLE)
    os.environ[CACHE_VARIABLE] = str(copies)  # the nodes' workers inherit it: copies under tmp, not ~/.cache
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 150 * 2**20,
                                                           "include_dashboard": False})
    workers = [nodes.add_node(num_cpus=1, object_store_memory=150 * 2**20) for _ in range(2)]
    ray.init(address=nodes.address, log_to_driver=False, configure_logging=False)
    yield nodes, workers
    ray.shutdown()
    nodes.shutdown()
    if saved is None:
        del os.environ[CACHE_VARIABLE]
    else:
        os.environ[CACHE_VARIABLE] = saved


@pytest.fixture(scope="module")
def model(minilm_folder):
    return E5Model(minilm_folder)


def test_a_node_removed_mid_run_and_the_model_shipped_to_each_node(cluster, copies, model, minilm_folder, tmp_path):
    nodes, workers = cluster
    corpus = tmp_path / "corpus.jsonl"
    texts = [f"passage {i} " + "rivers, hills and the towns between them " * (i % 30) for i in range(900)]
    corpus.write_text("".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    out = tmp_path / "ray"
    outcome = {}

    def run():
        try:
            outcome["summary"] = embed_corpus_ray(model, corpus, out, actors=1, shard_rows=SHARD_ROWS, ship_model=True)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = error

    runner = threading.Thread(target=run)
    runner.start()
    deadline = time.monotonic() + 200
    while time.monotonic() < deadline and runner.is_alive():
        manifest = out / "manifest.json"
        if manifest.exists() and json.loads(manifest.read_text())["shards"]:
            break
        time.sleep(0.05)
    first_node = json.loads((out / "manifest.json").read_text())["shards"][0]["node"]
    removed = next(w for w in workers if w.node_id == first_node)
    nodes.remove_node(removed)  # the one actor's node: Ray restarts it on the other
    runner.join(300)
    assert not runner.is_alive() and "error" not in outcome, outcome

    shards = json.loads((out / "manifest.json").read_text())["shards"]
    assert len(shards) == len(texts) // SHARD_ROWS and 0 < sum(s["node"] == first_node for s in shards) < len(shards)
    assert all(s["model_copy"] for s in shards)
    assert [p.name for p in copies.iterdir() if p.is_dir()] and all(
        model_hashes(p) == model_hashes(minilm_folder) for p in copies.iterdir() if p.is_dir())
    assert len([p for p in copies.iterdir() if p.is_dir()]) == 1  # both nodes share this machine's disk: one copy

    local = tmp_path / "local"
    embed_corpus_parquet(model, corpus, local, shard_rows=SHARD_ROWS)
    parts = sorted(out.glob("part-*.parquet"))
    assert [p.read_bytes() for p in parts] == [local.joinpath(p.name).read_bytes() for p in parts]
    assert len(parts) == len(list(local.glob("part-*.parquet")))
    ids, _ = read_corpus(out)
    assert ids == [f"d{i}" for i in range(len(texts))] and outcome["summary"].count == len(texts)


def test_embed_dataset_on_two_nodes_from_the_shipped_model(cluster, copies, model, minilm_folder):
    texts = [f"query {i}: " + "where the rivers meet " * (i % 9) for i in range(150)]
    ds = ray.data.from_items([{"id": f"q{i}", "text": t} for i, t in enumerate(texts)], override_num_blocks=6)
    out = embed_dataset(ds, minilm_folder, prefix="query: ", actors=1, batch_size=40, ship_model=True)
    rows = sorted(out.take_all(), key=lambda r: int(r["id"][1:]))
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(len(texts))]
    assert np.array_equal(np.stack([r["embedding"] for r in rows]), model.encode(texts, prefix="query: "))
    assert [model_hashes(p) for p in copies.iterdir() if p.is_dir()] == [model_hashes(minilm_folder)]
