"""Past one machine: e5np on Ray Data (the ``ray`` extra), bit-identical to a local run.

Two entry points:
- ``embed_corpus_ray``: ``e5np embed-corpus --ray``. The driver plans the shards
  (``e5np.corpus.parquet_shards``); only their descriptions (file, byte range) go through Ray's object store, so
  no read task can be starved of a CPU and hang the job (ray issue 44687). Each actor loads the
  model once and embeds whole shards, writing their Parquet files itself; the driver records them
  in the manifest as they finish. A retried shard writes the same bytes, a rerun skips what is done.
- ``embed_dataset``: a lazy transform of any Ray Dataset with id and text columns.

Threads: an actor holds ``num_cpus=threads`` and runs ``E5Model(num_threads=threads)`` with
Numba's and OpenMP's thread counts set in its runtime environment: Ray does not narrow an actor's
CPU affinity, and a library that sizes itself from it would start a thread per core of the node.
Weights: a path every node can read, each actor checking the files' sha256 against the driver's;
or, where the path is not the same on every node, the files shipped through the object store
(``e5np.distributed.node_copies``: on by default when the cluster has more than one node, used by an actor only
when its node's path differs; ``ship_model=True`` makes every actor load the node-local copy).
"""

import json
import os
import re
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from ..runtime import usable_cpus
from ..corpus import CorpusError, Job, Shard, embed_shard, model_hashes, vectors_table
from .node_copies import ModelSource, model_folder, model_source

THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def connect(address: str = "auto"):
    """``auto`` (a running cluster), ``local`` / ``local:N`` (start one here with N CPUs), or an address."""
    import ray

    if ray.is_initialized():
        return ray
    if address.startswith("local"):
        cpus = int(address.split(":", 1)[1]) if ":" in address else usable_cpus()[0]  # not the host's, in a container
        ray.init(num_cpus=cpus, include_dashboard=False, object_store_memory=512 * 2**20,
                 log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    return ray


def actor_pool(ray, actors: int | None, threads: int) -> int:
    """How many actors of ``threads`` CPUs to run: as asked, or as many as the cluster's CPUs hold.
    A pool the cluster cannot place is refused here instead of waiting for CPUs forever."""
    if threads < 1:
        raise ValueError(f"threads_per_actor must be at least 1, not {threads}")
    cpus = int(ray.cluster_resources().get("CPU", 0))
    actors = actors if actors is not None else max(cpus // threads, 1)
    if actors < 1 or actors * threads > cpus:
        raise CorpusError(f"{actors} actors x {threads} threads need {actors * threads} CPUs, but the Ray cluster "
                          f"has {cpus}: use fewer actors or threads (reads and writes need no CPU of their own)")
    return actors


def _runtime_env(threads: int, env: dict | None = None) -> dict:
    return {"env_vars": {**{name: str(threads) for name in THREAD_VARIABLES}, **(env or {})}}


class _Embedder:
    """One per actor: the model, loaded once, from files equal to the driver's."""

    def __init__(self, source: ModelSource, model_args: dict, threads: int, precision: str | None = None):
        from ..engine import E5Model

        folder = model_folder(source)
        self.model = E5Model(folder, num_threads=threads, **model_args)
        self.from_copy = folder != Path(source.folder)
        if precision is not None and self.model.precision != precision:
            raise CorpusError(f"this node runs {self.model.precision}, the driver planned {precision}: "
                              "vectors would differ; pass --precision explicitly")


class ShardActor(_Embedder):
    def __init__(self, source, model_args, threads, job: Job):
        import numba
        import ray

        super().__init__(source, model_args, threads, job.settings["precision"])
        self.job = job
        self.report = {"threads": self.model.num_threads, "numba_threads": numba.config.NUMBA_NUM_THREADS,
                       "model_copy": self.from_copy, "node": ray.get_runtime_context().get_node_id()}

    def __call__(self, batch: dict) -> dict:
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        results = []
        for row in rows:
            shard = Shard(int(row["index"]), int(row["start"]), int(row["stop"]), int(row["first_line"]),
                          tuple(json.loads(row["header"])) if row["header"] else None)
            if os.environ.get("E5NP_TEST_CRASH_ONCE") and not os.path.exists(os.environ["E5NP_TEST_CRASH_ONCE"]):
                open(os.environ["E5NP_TEST_CRASH_ONCE"], "w").close()  # tests: this actor dies mid-shard, once
                os._exit(1)
            results.append(embed_shard(self.model, shard, self.job))
        return {"result": [json.dumps({**r, **self.report}) for r in results]}


def ray_runner(folder: str, model_args: dict, address: str = "auto", actors: int | None = None, threads: int = 1,
               env: dict | None = None, ship_model="auto"):
    """A ``runner`` for ``e5np.corpus.parquet_shards.embed_corpus_parquet`` that embeds the pending shards on Ray
    actors (``env``: more variables for the actors' environment; ``ship_model``: see ``model_source``)."""
    def run(pending: list[Shard], job: Job, record) -> None:
        if not pending:
            return
        ray = connect(address)
        ray.data.DataContext.get_current().enable_progress_bars = False
        pool = actor_pool(ray, actors, threads)
        source = model_source(ray, folder, job.settings["model_files"], ship_model)
        items = [{**asdict(s), "header": json.dumps(s.header) if s.header else ""} for s in pending]
        ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            ShardActor, fn_constructor_kwargs={"source": source, "model_args": model_args, "threads": threads,
                                               "job": job},
            batch_size=1, compute=ray.data.ActorPoolStrategy(size=min(pool, len(items))), num_cpus=threads,
            runtime_env=_runtime_env(threads, env))
        with actor_errors(ray):
            for row in ds.iter_rows():
                record(json.loads(row["result"]))
    return run


@contextmanager
def actor_errors(ray):
    """An e5np error raised in an actor (a node's model files differ, ...) reaches the user as
    itself, not inside Ray's error with the actor's traceback."""
    try:
        yield
    except ray.exceptions.RayError as error:
        for line in reversed(str(error).splitlines()):
            found = re.search(r"\be5np\.[\w.]*CorpusError: (.*)", line)
            if found:
                raise CorpusError(found.group(1)) from None
        raise


def embed_corpus_ray(model, input_path, output_dir, *, address: str = "auto", actors: int | None = None,
                     threads_per_actor: int = 1, env: dict | None = None, ship_model="auto", **kwargs):
    """``e5np.corpus.parquet_shards.embed_corpus_parquet`` with the shards embedded on Ray (same files, same bytes)."""
    from ..corpus import embed_corpus_parquet

    model_args = {"precision": model.precision_choice.requested, "max_length": model.max_length,
                  "max_batch_tokens": model.max_batch_tokens, "gemm": None if model.gemm.endswith("bf16") else model.gemm}
    runner = ray_runner(str(model.folder.resolve()), model_args, address, actors, threads_per_actor, env, ship_model)
    return embed_corpus_parquet(model, input_path, output_dir, runner=runner, **kwargs)


class BatchActor(_Embedder):
    def __init__(self, source, model_args, threads, id_column, text_column, prefix):
        super().__init__(source, model_args, threads)
        self.id_column, self.text_column, self.prefix = id_column, text_column, prefix

    def __call__(self, table):
        vectors = self.model.encode(table[self.text_column].to_pylist(), prefix=self.prefix, log_truncation=False)
        return vectors_table(self.id_column, table[self.id_column], vectors)


def embed_dataset(ds, folder, *, prefix: str | None = "passage: ", threads_per_actor: int = 1,
                  actors: int | None = None, id_column: str = "id", text_column: str = "text",
                  batch_size: int = 1024, precision: str = "fp32", max_length: int | None = None,
                  ship_model="auto"):
    """A Ray Dataset with ``id_column`` and ``text_column`` -> one with the id, ``embedding``
    (fixed_size_list<float32>[dim]) and ``truncated``, lazily. Batches of ``batch_size`` rows
    (give e5np 1,000 or more: it sorts each batch by length); each equals ``E5Model.encode`` bit for bit.
    Actors load ``folder`` where their node's files equal the driver's (``ship_model``: see ``model_source``)."""
    import ray

    pool = actor_pool(ray, actors, threads_per_actor)
    source = model_source(ray, Path(folder).resolve(), model_hashes(Path(folder)), ship_model)
    return ds.map_batches(
        BatchActor, fn_constructor_kwargs={"source": source, "model_args": {"precision": precision, "max_length": max_length},
                                           "threads": threads_per_actor, "id_column": id_column,
                                           "text_column": text_column, "prefix": prefix},
        batch_size=batch_size, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=pool),
        num_cpus=threads_per_actor, runtime_env=_runtime_env(threads_per_actor))
