"""Reading ``model.safetensors`` (or a sharded ``model.safetensors.index.json``) without copying.

The safetensors package validates each file and lists its tensors; float32 tensors are then
handed out as read-only ``np.memmap`` arrays of their byte range in the file (the format is an
8-byte header length, a JSON header with each tensor's byte range, then the raw little-endian
data), so a 1.3 GB checkpoint costs no second copy. One mapping per tensor: a tensor repacked at
load (the GEMM weights) is unmapped once its memmap is dropped, and stops counting in RSS.
float16 and bfloat16 tensors are upcast to float32 once (float64 ones rounded).
"""

import json
import struct
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open

from ..errors import ModelFileError

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
           "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
_SKIPPED = ("embeddings.position_ids", "pooler.")  # an int64 buffer and the unused CLS pooler


def checkpoint_files(folder: Path) -> list[Path]:
    """The safetensors files of a model folder, in shard order."""
    index = folder / "model.safetensors.index.json"
    if index.exists():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ModelFileError(f"{index}: not a valid safetensors index ({e!r})") from None
        return [folder / name for name in sorted(set(weight_map.values()))]
    single = folder / "model.safetensors"
    if single.exists():
        return [single]
    found = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.safetensors"))
    raise ModelFileError(f"{folder}: no model.safetensors or model.safetensors.index.json"
                         + (f" (found {found}; convert .bin checkpoints to safetensors)" if found else ""))


def read_tensors(folder: Path) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint by name (a ``bert.`` or ``roberta.`` prefix removed, as
    *ForMaskedLM checkpoints have it); 16-bit floats as float32."""
    tensors = {}
    for path in checkpoint_files(folder):
        for name, array in _read_file(path).items():
            name = name.removeprefix("bert.").removeprefix("roberta.")
            if not name.startswith(_SKIPPED):
                tensors[name] = array
    return tensors


def _read_file(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise ModelFileError(f"{path}: listed in the safetensors index but missing")
    try:
        with safe_open(str(path), framework="numpy") as f:  # validates header and file size
            names = list(f.keys())
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelFileError(f"{path}: not a readable safetensors file, truncated or corrupt ({e})") from None
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
    tensors = {}
    for name in names:
        entry = header[name]
        if entry["dtype"] not in _DTYPES:
            raise ModelFileError(f"{path}: tensor {name} has dtype {entry['dtype']}, which e5np cannot read")
        begin, _ = entry["data_offsets"]
        raw = np.memmap(path, dtype=_DTYPES[entry["dtype"]], mode="r", offset=8 + header_len + begin,
                        shape=tuple(entry["shape"]))
        tensors[name] = _as_float32(raw, entry["dtype"])
    return tensors


def _as_float32(raw: np.ndarray, dtype: str) -> np.ndarray:
    if dtype not in ("F16", "BF16", "F64"):
        return raw
    if dtype != "BF16":
        upcast = raw.astype(np.float32)
    else:
        upcast = (raw.astype(np.uint32) << 16).view(np.float32)  # bfloat16 is the top half of a float32
    upcast.flags.writeable = False  # read-only like the mapped tensors: the same kernel types either way
    return upcast
