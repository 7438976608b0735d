"""A corpus folder's bookkeeping, whatever its format: settings that decide the output, the
manifest (refusing another run's folder), model file hashes, and files written whole or not at all."""

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import E5npError
from ..runtime import replace
from .records import detect_format

MANIFEST = "manifest.json"


class CorpusError(E5npError, ValueError):
    """Bad input rows (with --on-error fail) or an output folder that holds another run."""


CorpusError.__module__ = "e5np.corpus"  # its public name, in tracebacks and in Ray's error text


@dataclass
class Summary:
    count: int = 0
    truncated: int = 0
    skipped: list = field(default_factory=list)
    seconds: float = 0.0
    resumed_at_line: int = 0


def checked_paths(input_path, output_dir, on_error: str, fmt: str | None) -> tuple[Path, Path, str]:
    """The input and output as Paths and the input's format, once the arguments are known good."""
    input_path, output_dir = Path(input_path), Path(output_dir)
    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
    if not input_path.is_file():
        raise CorpusError(f"{input_path}: no such input file")
    return input_path, output_dir, fmt or detect_format(input_path)



def corpus_settings(model, input_path, fmt, fields, prefix, shard_size, on_error) -> dict:
    """What decides a corpus run's output (both formats): a rerun with other settings is refused."""
    stat = input_path.stat()
    return {
        "model": str(model.folder), "model_files": model_hashes(model.folder),
        "dimension": model.hidden_size, "max_length": model.max_length, "precision": model.precision,
        "input": {"path": str(input_path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns},
        "format": fmt, "fields": asdict(fields), "prefix": prefix, "shard_size": shard_size,
        "on_error": on_error, "e5np_version": __version__,
        # int8 embeddings depend on the scheme too (the key only where int8 runs: older folders resume)
        **({"int8_scheme": model.precision_reason} if model.precision_choice.is_int8 else {}),
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
    replace(tmp, path)  # retried while another process holds it open (Windows)


def write_json(path: Path, data: dict) -> None:
    text = json.dumps(data, indent=1, ensure_ascii=False).encode("utf-8")
    atomic_write(path, lambda f: f.write(text))


def read_manifest(output_dir: Path) -> dict:
    return json.loads((output_dir / MANIFEST).read_text(encoding="utf-8"))
