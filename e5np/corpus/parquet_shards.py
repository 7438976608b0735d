"""A corpus as planned shards of Parquet vectors: the same files whether one process or a Ray
cluster embeds them (``e5np.distributed``).

The driver plans the shards from the input alone (byte ranges of ``shard_rows`` lines each, so
the plan and its hash depend on nothing else). A shard is embedded by whoever gets it and written
as ``part-NNNNNN.parquet`` (``id`` string, ``embedding`` fixed_size_list<float32>[dim],
``truncated`` bool; the run's settings in the file's metadata) under a temporary name, then
renamed: a retried shard writes the same bytes again. The driver records each finished shard in
``manifest.json`` (rewritten atomically); a rerun skips what the manifest lists, and a rerun with
other settings is refused with the differences listed, as the local ``.npy`` run does.
"""

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .manifest import (MANIFEST, CorpusError, Summary, atomic_write, checked_paths, corpus_settings, open_manifest,
                       read_manifest, sha256_file, write_json)
from .records import BadRow, ByteRange, Fields, read_records

LINE_FORMATS = ("jsonl", "tsv", "text")  # one record per line: byte ranges split them cleanly


@dataclass(frozen=True)
class Shard:
    index: int
    start: int            # bytes [start, stop) of the input
    stop: int
    first_line: int
    header: tuple | None  # a TSV's column names (its line 1)

    @property
    def file(self) -> str:
        return f"part-{self.index:06d}.parquet"


@dataclass(frozen=True)
class Job:
    """What every shard's embedder needs besides the shard: the same for the whole run."""
    input: str
    output: str
    fmt: str
    fields: Fields
    prefix: str | None
    on_error: str
    batch_size: int
    settings: dict


def plan_shards(path: Path, fmt: str, shard_rows: int) -> list[Shard]:
    """Byte ranges of ``shard_rows`` lines each (a TSV's header line excluded)."""
    if fmt not in LINE_FORMATS:
        raise CorpusError(f"{path}: Parquet shards split the input by lines, which {fmt.upper()} rows with "
                          f"quoted newlines would break; convert it to JSONL or TSV (or use --format npy)")
    shards, header = [], None
    with open(path, "rb") as f:
        start, line = 0, 1
        if fmt == "tsv":
            first = f.readline()
            header = tuple(first.decode("utf-8").rstrip("\r\n").split("\t"))
            start, line = len(first), 2
        while True:
            lines = 0
            position = start
            for raw in iter(f.readline, b""):
                position += len(raw)
                lines += 1
                if lines == shard_rows:
                    break
            if not lines:
                return shards
            shards.append(Shard(len(shards), start, position, line, header))
            start, line = position, line + lines


def plan_hash(shards: list[Shard]) -> str:
    return hashlib.sha256(json.dumps([asdict(s) for s in shards]).encode()).hexdigest()


def run_settings(model, input_path: Path, fmt: str, fields: Fields, prefix, shard_rows: int, on_error: str,
                 shards: list[Shard]) -> dict:
    settings = corpus_settings(model, input_path, fmt, fields, prefix, shard_rows, on_error)
    return {**settings, "output_format": "parquet", "plan_sha256": plan_hash(shards), "shards": len(shards)}


def embed_shard(model, shard: Shard, job: Job) -> dict:
    """Embed one shard and write its Parquet file (temporary name, then renamed); what the manifest records."""
    import pyarrow.parquet as pq

    started = time.perf_counter()
    records, skipped = [], []
    part = ByteRange(shard.start, shard.stop, shard.first_line, shard.header)
    for item in read_records(Path(job.input), job.fields, job.fmt, part):
        if isinstance(item, BadRow):
            if job.on_error == "fail":
                raise CorpusError(f"{job.input}, line {item.line}: {item.reason} (use --on-error skip to leave "
                                  "such rows out; they are then listed in the manifest)")
            skipped.append({"line": item.line, "reason": item.reason})
        else:
            records.append(item)
    vectors = model.encode([r.text for r in records], batch_size=job.batch_size, prefix=job.prefix, log_truncation=False)
    table = vectors_table("id", [r.id for r in records], vectors)
    table = table.replace_schema_metadata({"e5np": json.dumps(job.settings, sort_keys=True)})
    path = Path(job.output) / shard.file
    atomic_write(path, lambda f: pq.write_table(table, f))
    return {"index": shard.index, "file": shard.file, "rows": len(records), "truncated": len(vectors.truncated),
            "first_line": shard.first_line, "skipped": skipped, "sha256": sha256_file(path),
            "seconds": round(time.perf_counter() - started, 3)}


def vectors_table(id_column: str, ids, vectors):
    """Ids and ``encode``'s vectors as the output's Arrow table: the ids (as given), ``embedding``
    as fixed_size_list<float32>[dim], ``truncated`` from the vectors' record of cut texts."""
    import pyarrow as pa

    truncated = np.zeros(len(vectors), bool)
    truncated[vectors.truncated] = True
    flat = pa.array(np.asarray(vectors, np.float32).reshape(-1))
    return pa.table({id_column: ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(ids, pa.string()),
                     "embedding": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
                     "truncated": pa.array(truncated)})


def embed_corpus_parquet(model, input_path, output_dir, *, fields: Fields = Fields(), prefix: str | None = "passage: ",
                         batch_size: int = 32, shard_rows: int = 10_000, on_error: str = "fail",
                         fmt: str | None = None, runner=None) -> Summary:
    """Plan, then embed every shard the manifest does not list yet. ``runner(pending, job, record)``
    embeds the pending shards and calls ``record(result)`` for each finished one (default: here,
    in order, with ``model``; ``e5np.distributed`` runs them on Ray actors)."""
    input_path, output_dir, fmt = checked_paths(input_path, output_dir, on_error, fmt)
    shards = plan_shards(input_path, fmt, shard_rows)
    settings = run_settings(model, input_path, fmt, fields, prefix, shard_rows, on_error, shards)
    manifest = open_manifest(output_dir, settings)
    done = {s["index"] for s in manifest["shards"]}
    pending = [s for s in shards if s.index not in done]
    job = Job(str(input_path.resolve()), str(output_dir.resolve()), fmt, fields, prefix, on_error, batch_size, settings)

    def record(result: dict) -> None:
        if result["index"] in {s["index"] for s in manifest["shards"]}:
            return  # a shard retried after it was recorded: the same bytes again
        manifest["shards"] = sorted(manifest["shards"] + [result], key=lambda s: s["index"])
        manifest["skipped"] = sorted(manifest["skipped"] + result["skipped"], key=lambda s: s["line"])
        manifest["count"] = sum(s["rows"] for s in manifest["shards"])
        write_json(output_dir / MANIFEST, manifest)

    started = time.perf_counter()
    (runner or local_runner(model))(pending, job, record)
    manifest["complete"] = len(manifest["shards"]) == len(shards)
    write_json(output_dir / MANIFEST, manifest)
    return Summary(count=manifest["count"], truncated=sum(s["truncated"] for s in manifest["shards"]),
                   skipped=manifest["skipped"], seconds=time.perf_counter() - started)


def local_runner(model):
    def run(pending: list[Shard], job: Job, record) -> None:
        for shard in pending:
            record(embed_shard(model, shard, job))
    return run


def read_parquet_vectors(output_dir: Path) -> tuple[list[str], np.ndarray]:
    import pyarrow.parquet as pq

    manifest = read_manifest(output_dir)
    ids, vectors = [], []
    for shard in manifest["shards"]:
        table = pq.read_table(output_dir / shard["file"])
        ids += table["id"].to_pylist()
        dim = table.schema.field("embedding").type.list_size
        vectors.append(table["embedding"].combine_chunks().flatten().to_numpy().reshape(-1, dim))
    dim = manifest["settings"]["dimension"]
    return ids, np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32)

