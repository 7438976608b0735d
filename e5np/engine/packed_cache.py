"""The packed weights of a checkpoint, kept on disk so that later loads map them instead of repacking.

Packing (fp32 panels, bf16 tiles) is a transposing copy of every GEMM weight: 1.3 GB and seconds
for e5-large, at every start. The first load writes the packed arrays to one cache file; later
loads memory-map it copy-on-write: no copy, and the page-cache pages are shared by every process
on the machine that maps the same file (N server workers or Ray actors cost one copy).

A file is used only when everything it was built from is unchanged: its key names the checkpoint
files (resolved path, size, modification time), config.json, the GEMM, the register tile of this
build, e5np's version and a digest of the sources that define the layouts. It is written under a
temporary name and renamed into place, so a crash mid-write leaves nothing that loads; a file that
fails any check (magic, key, size, the sampled digest of each array) is rebuilt, never used.
Where the cache folder cannot be written, the model loads as before and one line says so.

File layout: ``MAGIC``, then each array at a page-aligned offset, then a JSON footer (key, arrays
with dtype, shape, offset, digest), its length as 8 little-endian bytes, and ``END``.
"""

import hashlib
import json
import logging
import os
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from .. import __version__, kernels
from ..kernels.jit import cache_home, source_digest
from ..kernels.target import compile_tile

log = logging.getLogger("e5np")

MAGIC, END = b"E5NPPACK", b"E5NPEND1"
ALIGN = 4096
SAMPLES = 16  # 64-byte windows per array in its digest: catches a truncated or overwritten file cheaply
_LAYOUT_KERNELS = ("gemm.py", "bf16.py", "int8.py", "target.py")  # how fp32 panels, bf16 and int8 tiles are laid out
# which arrays are packed, this format, and (int8) the calibration they were made from
_LAYOUT_ENGINE = ("weights.py", "linear.py", "int8_linear.py", "calibration.py", "calibration_texts.py", "packed_cache.py")
_said_unwritable = False


def cache_folder() -> Path:
    return Path(cache_home()) / "packed"


def cached_packing(folder: Path, files: list[Path], gemm: str,
                   pack: Callable[[], Iterator[tuple[str, np.ndarray]]]) -> tuple[dict[str, np.ndarray], Path | None]:
    """(the arrays ``pack()`` yields for this checkpoint, the cache file they are mapped from):
    mapped from the cache file when a valid one exists, else packed now, each written to the cache
    as soon as it is made (so no more than one packed array is in memory at a time) and then
    mapped; where the cache cannot be written, packed again into memory (file None)."""
    path, key = cache_file(folder, files, gemm), cache_key(folder, files, gemm)
    if path.exists():
        try:
            return read_packed(path, key), path
        except StaleCache as e:
            log.info("e5np: packed weights in %s are for another build (%s); packing again", path, e)
        except (OSError, ValueError) as e:
            log.warning("e5np: packed-weight cache %s is unreadable (%s); packing again", path, e)
    try:
        write_packed(path, key, pack())
        return read_packed(path, key), path
    except (OSError, ValueError) as e:
        _say_unwritable(path.parent, e)
    return dict(pack()), None


def cache_status(folder: Path, files: list[Path], gemm: str) -> str:
    """One line for ``e5np info``: whether a load of this folder on this GEMM would map its cache."""
    path = cache_file(folder, files, gemm)
    if not path.exists():
        return f"not cached yet (the first load writes {path})"
    try:
        built_for = read_footer(path)[0]
    except (OSError, ValueError) as e:
        return f"{path} is unreadable ({e}); the next load rebuilds it"
    if built_for != cache_key(folder, files, gemm):
        return f"{path} was built from another checkpoint or e5np; the next load rebuilds it"
    return f"cached in {path} ({path.stat().st_size / 1e9:.2f} GB)"


def cache_file(folder: Path, files: list[Path], gemm: str) -> Path:
    """One file per model folder and GEMM: ``<folder name>-<digest of its path and GEMM>.e5pack``."""
    resolved = str(Path(folder).resolve())
    slot = hashlib.sha256(f"{resolved}\0{gemm}".encode()).hexdigest()[:16]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(resolved).name)[:64]
    return cache_folder() / f"{name}-{slot}.e5pack"


def cache_key(folder: Path, files: list[Path], gemm: str) -> dict:
    def identity(p: Path):
        st = p.stat()
        return [str(p.resolve()), st.st_size, st.st_mtime_ns]

    layout_sources = ([Path(kernels.__file__).parent / name for name in _LAYOUT_KERNELS]
                      + [Path(__file__).parent / name for name in _LAYOUT_ENGINE])
    return {"folder": str(Path(folder).resolve()), "e5np": __version__, "layout": source_digest(layout_sources),
            "gemm": gemm, "tile": compile_tile().isa, "config": identity(Path(folder) / "config.json"),
            "files": [identity(p) for p in files]}


class StaleCache(ValueError):
    """A well-formed cache file built from another checkpoint, layout or build."""


def read_packed(path: Path, key: dict) -> dict[str, np.ndarray]:
    """The arrays of a cache file, mapped copy-on-write (writable flags, shared pages); raises
    ValueError (StaleCache for a key mismatch) unless the file passes every check."""
    size, (built_for, entries) = path.stat().st_size, read_footer(path)
    if built_for != key:
        raise StaleCache("key differs")
    data = np.memmap(path, dtype=np.uint8, mode="c")
    arrays = {}
    for name, (dtype, shape, offset, digest) in entries.items():
        nbytes = dtype.itemsize * int(np.prod(shape))
        if offset % ALIGN or offset + nbytes > size:
            raise ValueError(f"array {name} lies outside the file")
        raw = np.asarray(data[offset:offset + nbytes])
        if _digest(raw) != digest:
            raise ValueError(f"array {name} does not match its digest")
        arrays[name] = raw.view(dtype).reshape(shape)
    return arrays


def read_footer(path: Path) -> tuple[dict, dict]:
    """(key, {name: (dtype, shape, offset, digest)}) of a cache file; ValueError if it has none."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(len(MAGIC))
        if size < len(MAGIC) + 16 or head != MAGIC:
            raise ValueError("not an e5np packed-weight file")
        f.seek(size - 16)
        footer_len, end = struct.unpack("<Q", f.read(8))[0], f.read(8)
        if end != END or footer_len > size - 16 - len(MAGIC):
            raise ValueError("truncated (no footer)")
        f.seek(size - 16 - footer_len)
        try:
            footer = json.loads(f.read(footer_len))
            built_for, entries = footer["key"], footer["arrays"]
            entries = {name: (np.dtype(e["dtype"]), tuple(e["shape"]), int(e["offset"]), e["digest"])
                       for name, e in entries.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"footer unreadable ({e!r})") from None
    return built_for, entries


def write_packed(path: Path, key: dict, arrays: Iterable[tuple[str, np.ndarray]]) -> None:
    """Write a cache file atomically: a temporary file in the same folder, renamed into place over
    any older file of the same model and GEMM. Temporary files a killed process left are removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(path.parent, keep=path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC)
            entries, offset = {}, ALIGN
            for name, a in arrays:
                raw = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
                f.seek(offset)
                f.write(memoryview(raw))
                entries[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset, "digest": _digest(raw)}
                offset += -(-raw.nbytes // ALIGN) * ALIGN
            f.seek(offset)
            footer = json.dumps({"key": key, "arrays": entries}).encode()
            f.write(footer + struct.pack("<Q", len(footer)) + END)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name says the file is complete
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would keep other users' workers from sharing it
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _remove_abandoned(folder: Path, keep: Path, older_than_s: float = 3600) -> None:
    """Delete what no load can use any more: cache files of model folders that no longer exist,
    and temporary files older than an hour (a killed writer's; a write takes seconds)."""
    for p in folder.glob("*.e5pack*"):
        try:
            if p.suffix == ".tmp":
                if time.time() - p.stat().st_mtime > older_than_s:
                    p.unlink()
            elif p != keep and not Path(read_footer(p)[0].get("folder", "")).is_dir():
                p.unlink()
        except (OSError, ValueError, AttributeError):
            pass  # another process removed it, holds it, or it is not ours to judge


def _digest(raw: np.ndarray) -> str:
    """blake2b of SAMPLES evenly spaced 64-byte windows and the last 64 bytes of an array's bytes."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(raw.nbytes).encode())
    step = max(raw.nbytes // SAMPLES, 1)
    for start in list(range(0, raw.nbytes, step))[:SAMPLES] + [max(raw.nbytes - 64, 0)]:
        h.update(raw[start:start + 64].tobytes())
    return h.hexdigest()


def _say_unwritable(where: Path, error: Exception) -> None:
    global _said_unwritable
    if not _said_unwritable:
        log.warning("e5np: cannot write packed weights to %s (%s); weights are packed at every load "
                    "(set E5NP_CACHE_DIR to a writable folder)", where, error)
        _said_unwritable = True
