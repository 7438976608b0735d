"""Embedding a whole corpus to disk: streamed, sharded, resumable.

Output folder:
  embeddings-00000.npy   float32 [rows, hidden], one per shard
  ids-00000.jsonl        the shard's document ids, in the same order, one JSON string per line
  manifest.json          settings, model file hashes, per-shard rows / checksums, skipped rows

Every file is written under a temporary name and renamed when complete, and the manifest is
rewritten (the same way) after each shard, so a killed run leaves only complete shards under
their final names; run again with the same arguments, it continues after the last shard the
manifest lists. Memory holds one shard of texts and vectors, whatever the corpus size.
"""

import json
import time
from pathlib import Path

import numpy as np

from ..engine import progress_bar
from .manifest import (MANIFEST, CorpusError, Summary, atomic_write, checked_paths, corpus_settings, open_manifest,
                       read_manifest, sha256_file, write_json)
from .records import BadRow, Fields, Record, read_records


def embed_corpus(model, input_path, output_dir, *, fields: Fields = Fields(), prefix: str | None = "passage: ",
                 batch_size: int = 32, shard_size: int = 10_000, on_error: str = "fail", fmt: str | None = None,
                 progress: bool = True) -> Summary:
    """Embed every record of ``input_path`` into shards under ``output_dir`` (see module doc)."""
    input_path, output_dir, fmt = checked_paths(input_path, output_dir, on_error, fmt)
    settings = corpus_settings(model, input_path, fmt, fields, prefix, shard_size, on_error)
    manifest = open_manifest(output_dir, settings)
    summary = Summary(count=sum(s["rows"] for s in manifest["shards"]),
                      truncated=sum(s["truncated"] for s in manifest["shards"]),
                      skipped=list(manifest["skipped"]), resumed_at_line=manifest["lines_done"])
    if manifest["complete"]:
        return summary
    started = time.perf_counter()
    bar = _progress_bar(input_path, summary.count + len(summary.skipped), progress)
    pending: list[Record] = []
    pending_skips: list[dict] = []
    last_line = manifest["lines_done"]
    for item in read_records(input_path, fields, fmt):
        if item.line <= manifest["lines_done"]:
            continue
        last_line = item.line
        if isinstance(item, BadRow):
            if on_error == "fail":
                raise CorpusError(f"{input_path}, line {item.line}: {item.reason} "
                                  f"(use --on-error skip to leave such rows out; they are then listed in the manifest)")
            pending_skips.append({"line": item.line, "reason": item.reason})
            bar.update(1)
            continue
        pending.append(item)
        if len(pending) == shard_size:
            _write_shard(model, output_dir, manifest, pending, pending_skips, last_line, prefix, batch_size, summary, bar)
            pending, pending_skips = [], []
    _write_shard(model, output_dir, manifest, pending, pending_skips, last_line, prefix, batch_size, summary, bar)
    manifest["complete"] = True
    manifest["count"] = summary.count
    write_json(output_dir / MANIFEST, manifest)
    bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _write_shard(model, output_dir, manifest, records, skips, end_line, prefix, batch_size, summary, bar):
    if not records and not skips and end_line == manifest["lines_done"]:
        return
    index = len(manifest["shards"])
    vectors, truncated = [], 0
    for chunk in model.encode_iter((r.text for r in records), batch_size=batch_size, prefix=prefix):
        vectors.append(chunk)
        truncated += len(chunk.truncated)
        bar.update(len(chunk))
    vectors = np.concatenate(vectors) if vectors else np.zeros((0, model.hidden_size), np.float32)
    names = {"embeddings": f"embeddings-{index:05d}.npy", "ids": f"ids-{index:05d}.jsonl"}
    atomic_write(output_dir / names["embeddings"], lambda f: np.save(f, np.asarray(vectors)))
    ids_text = "".join(json.dumps(r.id, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    atomic_write(output_dir / names["ids"], lambda f: f.write(ids_text))
    manifest["shards"].append({
        **names, "rows": len(records), "first_line": records[0].line if records else None, "end_line": end_line,
        "truncated": truncated,
        "sha256": {key: sha256_file(output_dir / name) for key, name in names.items()},
    })
    manifest["skipped"] += skips
    manifest["lines_done"] = end_line
    manifest["count"] = summary.count + len(records)
    write_json(output_dir / MANIFEST, manifest)
    summary.count += len(records)
    summary.truncated += truncated
    summary.skipped += skips


def _progress_bar(path: Path, done: int, show: bool):
    if not show:
        return progress_bar(False)
    with open(path, "rb") as f:
        total = sum(1 for _ in f)  # lines: one text each (a CSV header counts too; close enough for an ETA)
    return progress_bar(True, total=total, initial=done, desc="e5np embed-corpus")


def read_npy_vectors(output_dir: Path) -> tuple[list[str], np.ndarray]:
    manifest = read_manifest(output_dir)
    ids, vectors = [], []
    for shard in manifest["shards"]:
        ids += [json.loads(line) for line in (output_dir / shard["ids"]).read_text(encoding="utf-8").splitlines()]
        vectors.append(np.load(output_dir / shard["embeddings"]))
    dim = manifest["settings"]["dimension"]
    return ids, np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32)
