"""Where a Ray actor finds the model: the driver's path, or a copy on its node.

``model_source`` (on the driver) says where; ``model_folder`` (in the actor) finds it. The driver
puts the raw files into Ray's object store once (``ship``); an actor that needs them
(``model_folder``) writes them to a folder on its own node, named by the files' sha256: each
actor that finds no copy writes one under a unique temporary name and renames it into place (the
first rename wins; a later actor discards its own), so a folder that exists is whole, on every
OS, with no file lock; every actor checks the sha256 of the files it loads against the driver's.
"""

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..corpus import CorpusError, model_hashes

CACHE_VARIABLE = "E5NP_NODE_MODEL_CACHE"  # where the copies go (default ~/.cache/e5np/ray-models)


@dataclass(frozen=True)
class ModelSource:
    """Where actors find the model: ``folder`` if their node's files there have the driver's
    ``hashes``, else (or always, with ``always_copy``) the ``shipped`` files' node-local copy."""
    folder: str
    hashes: dict
    shipped: dict | None = None
    always_copy: bool = False


def model_source(ray, folder, hashes: dict, ship_model="auto") -> ModelSource:
    """``ship_model``: True (every actor loads a node-local copy), False (the path only), or
    ``auto`` (shipped when the cluster has more than one node; used where the path differs)."""
    if ship_model not in (True, False, "auto"):
        raise ValueError(f"ship_model must be True, False or 'auto', not {ship_model!r}")
    nodes = sum(1 for node in ray.nodes() if node["Alive"])
    shipped = ship(ray, Path(folder), hashes) if ship_model is True or (ship_model == "auto" and nodes > 1) else None
    return ModelSource(str(folder), hashes, shipped, ship_model is True)


def ship(ray, folder: Path, hashes: dict) -> dict:
    """Object references to the raw bytes of each model file (memory-mapped, copied once into the store)."""
    return {name: ray.put(np.memmap(folder / name, np.uint8, "r") if (folder / name).stat().st_size else b"")
            for name in hashes}


def model_folder(source: ModelSource) -> Path:
    """The folder this actor loads: ``source.folder`` when its files are the driver's, else a
    node-local copy of the shipped files (always, with ``always_copy``); refused by name when neither is there."""
    if not source.always_copy:
        folder = Path(source.folder)
        found = model_hashes(folder) if folder.is_dir() else {}
        if found == source.hashes:
            return folder
        if source.shipped is None:
            differing = sorted(set(found) ^ set(source.hashes) | {k for k in found if found[k] != source.hashes.get(k)})
            problem = f"differs from the driver's model files ({differing})" if found else "is not there"
            raise CorpusError(f"{folder} on this node {problem}: give a path every node can read, or ship the "
                              "model through Ray's object store (ship_model=True, --ship-model)")
    return _node_copy(source.hashes, source.shipped)


def _node_copy(hashes: dict, shipped: dict) -> Path:
    """The node-local copy of the shipped files. An actor that finds none writes its own under a
    unique name and renames it into place; where another actor's rename came first, it discards its
    copy. No file lock (Windows has no fcntl), and a copy is whole or not there at all."""
    import ray

    root = Path(os.environ.get(CACHE_VARIABLE) or Path.home() / ".cache" / "e5np" / "ray-models")
    name = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:16]
    folder = root / name
    if not folder.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f"{name}.partial-", dir=root))
        try:
            for relative, ref in shipped.items():
                path = partial / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(memoryview(ray.get(ref)))
            os.rename(partial, folder)
        except OSError:
            if not folder.is_dir():  # not a race another actor won: a real error
                raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    found = model_hashes(folder)
    if found != hashes:
        raise CorpusError(f"the node-local copy {folder} differs from the driver's model files "
                          f"({sorted(k for k in hashes if found.get(k) != hashes[k])}): delete it and rerun")
    return folder
