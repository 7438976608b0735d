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

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .errors import E5npError
from .progress import progress_bar
from .records import BadRow, Fields, Record, detect_format, read_records

MANIFEST = "manifest.json"


class CorpusError(E5npError, ValueError):
    """Bad input rows (with --on-error fail) or an output folder that holds another run."""


@dataclass
class Summary:
    count: int = 0
    truncated: int = 0
    skipped: list = field(default_factory=list)
    seconds: float = 0.0
    resumed_at_line: int = 0


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


def read_corpus(output_dir) -> tuple[list[str], np.ndarray]:
    """All ids and embeddings of a finished corpus folder, .npy or Parquet shards (small corpora)."""
    output_dir = Path(output_dir)
    manifest = json.loads((output_dir / MANIFEST).read_text())
    if manifest["settings"].get("output_format") == "parquet":
        from .shards import read_parquet_vectors
        return read_parquet_vectors(output_dir)
    ids, vectors = [], []
    for shard in manifest["shards"]:
        ids += [json.loads(line) for line in (output_dir / shard["ids"]).read_text(encoding="utf-8").splitlines()]
        vectors.append(np.load(output_dir / shard["embeddings"]))
    dim = manifest["settings"]["dimension"]
    return ids, np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32)


def checked_paths(input_path, output_dir, on_error: str, fmt: str | None) -> tuple[Path, Path, str]:
    """The input and output as Paths and the input's format, once the arguments are known good."""
    input_path, output_dir = Path(input_path), Path(output_dir)
    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
    if not input_path.is_file():
        raise CorpusError(f"{input_path}: no such input file")
    return input_path, output_dir, fmt or detect_format(input_path)


# --- internals ------------------------------------------------------------------------------

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


def corpus_settings(model, input_path, fmt, fields, prefix, shard_size, on_error) -> dict:
    """What decides a corpus run's output (both formats): a rerun with other settings is refused."""
    stat = input_path.stat()
    return {
        "model": str(model.folder), "model_files": model_hashes(model.folder),
        "dimension": model.hidden_size, "max_length": model.max_length, "precision": model.precision,
        "input": {"path": str(input_path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns},
        "format": fmt, "fields": asdict(fields), "prefix": prefix, "shard_size": shard_size,
        "on_error": on_error, "e5np_version": __version__,
    }


def open_manifest(output_dir: Path, settings: dict) -> dict:
    """The folder's manifest (a run to continue), or a new one; another run's settings are refused."""
    path = output_dir / MANIFEST
    if path.exists():
        manifest = json.loads(path.read_text(encoding="utf-8"))
        old = manifest.get("settings", {})
        changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        if changed:
            details = "; ".join(f"{k}: {old.get(k)!r} -> {settings.get(k)!r}" for k in changed)
            raise CorpusError(f"{output_dir} holds a run with other settings ({details}). "
                              f"Use a new --output folder, or delete this one to start over.")
        return manifest
    if output_dir.exists() and any(output_dir.iterdir()):
        raise CorpusError(f"{output_dir} is not empty and has no {MANIFEST}: not an e5np corpus folder")
    output_dir.mkdir(parents=True, exist_ok=True)
    return {"settings": settings, "shards": [], "skipped": [], "lines_done": 0, "count": 0, "complete": False}


MODEL_FILES = ["config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json", "sentence_bert_config.json",
               "modules.json", "1_Pooling/config.json", "config_sentence_transformers.json",
               "model.safetensors.index.json"]  # what shapes the vectors (and, shipped to Ray nodes, all a model loads)


def model_hashes(folder: Path) -> dict:
    files = [folder / n for n in MODEL_FILES] + sorted(folder.glob("*.safetensors"))
    return {str(p.relative_to(folder)): sha256_file(p) for p in files if p.exists()}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: Path, write) -> None:
    """Written under a temporary name, flushed to disk, then renamed: a crash leaves old or new, whole."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    text = json.dumps(data, indent=1, ensure_ascii=False).encode("utf-8")
    atomic_write(path, lambda f: f.write(text))


def _progress_bar(path: Path, done: int, show: bool):
    if not show:
        return progress_bar(False)
    with open(path, "rb") as f:
        total = sum(1 for _ in f)  # lines: one text each (a CSV header counts too; close enough for an ETA)
    return progress_bar(True, total=total, initial=done, desc="e5np embed-corpus")
