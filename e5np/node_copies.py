"""The model's files on a Ray node that cannot read the driver's path.

The driver puts the raw files into Ray's object store once (``ship``); an actor that needs them
(``model_folder``) writes them to a folder on its own node, named by the files' sha256: the
first actor of a node writes under a file lock, the others wait on the lock and load the copy.
The copy is written under a temporary name and renamed, so a folder that exists is whole, and
every actor checks the sha256 of the files it loads against the driver's before it loads them.
"""

import fcntl
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from .corpus import CorpusError, model_hashes

CACHE_VARIABLE = "E5NP_NODE_MODEL_CACHE"  # where the copies go (default ~/.cache/e5np/ray-models)


def ship(ray, folder: Path, hashes: dict) -> dict:
    """Object references to the raw bytes of each model file (memory-mapped, copied once into the store)."""
    return {name: ray.put(np.memmap(folder / name, np.uint8, "r") if (folder / name).stat().st_size else b"")
            for name in hashes}


def model_folder(folder: str, hashes: dict, shipped: dict | None, always_copy: bool) -> Path:
    """The folder this actor loads: ``folder`` when its files are the driver's, else a node-local
    copy of the shipped files (always, if ``always_copy``); refused by name when neither is there."""
    if not always_copy:
        found = model_hashes(Path(folder)) if Path(folder).is_dir() else {}
        if found == hashes:
            return Path(folder)
        if shipped is None:
            differing = sorted(set(found) ^ set(hashes) | {k for k in found if found[k] != hashes.get(k)})
            problem = f"differs from the driver's model files ({differing})" if found else "is not there"
            raise CorpusError(f"{folder} on this node {problem}: give a path every node can read, or ship the "
                              "model through Ray's object store (ship_model=True, --ship-model)")
    if shipped is None:
        raise CorpusError("always_copy without shipped model files")
    return _node_copy(hashes, shipped)


def _node_copy(hashes: dict, shipped: dict) -> Path:
    import ray

    root = Path(os.environ.get(CACHE_VARIABLE) or Path.home() / ".cache" / "e5np" / "ray-models")
    name = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:16]
    folder = root / name
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first actor of this node writes; the others wait here
        if not folder.is_dir():
            partial = root / f"{name}.partial"
            shutil.rmtree(partial, ignore_errors=True)  # left by an actor that died while writing
            for relative, ref in shipped.items():
                path = partial / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(memoryview(ray.get(ref)))
            partial.rename(folder)
    found = model_hashes(folder)
    if found != hashes:
        raise CorpusError(f"the node-local copy {folder} differs from the driver's model files "
                          f"({sorted(k for k in hashes if found.get(k) != hashes[k])}): delete it and rerun")
    return folder
