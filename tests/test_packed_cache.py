"""The packed-weight cache (``e5np/engine/packed_cache.py``): a later load maps what the first one
packed and gives the same embeddings bit for bit; a corrupt, truncated, stale or unwritable cache,
a full disk and two processes building at once each still give the right embeddings."""

import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from e5np import E5Model
from e5np.engine import packed_cache, weights
from linux_only import rlimit_fsize

TEXTS = ["query: how much protein should a female eat", "passage: " + "protein intake " * 40]


@pytest.fixture
def model_copy(tiny_folder, tmp_path):
    """A copy of the tiny model that a test may change, and an empty cache folder for it."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_folder, folder)
    return folder


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("E5NP_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def expected(tiny_folder):
    """The embeddings from weights packed in memory, as every load did before the cache."""
    return _packed_in_memory(tiny_folder)


def _packed_in_memory(folder, precision="fp32"):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(weights, "cached_packing", lambda folder, files, gemm, pack: (dict(pack()), None))
        return E5Model(folder, precision=precision).encode(TEXTS)


def _cache_files(cache_dir):
    return sorted((cache_dir / "packed").glob("*.e5pack"))


def test_a_later_load_maps_the_cache_and_embeds_the_same(model_copy, cache_dir, expected):
    first = E5Model(model_copy).encode(TEXTS)
    [path] = _cache_files(cache_dir)
    second_model = E5Model(model_copy)
    weight = second_model.weights.layers[0].qkv.weight
    assert isinstance(weight.base, np.memmap) or isinstance(getattr(weight.base, "base", None), np.memmap), \
        "the second load should map the cache file, not pack again"
    assert weight.flags.writeable  # copy-on-write: the same kernel types as packed arrays
    second = second_model.encode(TEXTS)
    assert np.array_equal(first, expected) and np.array_equal(second, expected)
    assert path.stat().st_mode & 0o044, "other users' processes should be able to share the file"


def test_the_bf16_layouts_are_cached_too(model_copy, cache_dir):
    from e5np.runtime import choose_precision
    if choose_precision("bf16").path == "fp32":
        pytest.skip("this CPU has no bf16 path")
    fresh = _packed_in_memory(model_copy, "bf16")
    E5Model(model_copy, precision="bf16")
    assert len(_cache_files(cache_dir)) == 1
    assert np.array_equal(E5Model(model_copy, precision="bf16").encode(TEXTS), fresh)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "zeroed array", "empty"])
def test_a_damaged_cache_is_rebuilt_never_used(model_copy, cache_dir, expected, damage, caplog):
    E5Model(model_copy)
    [path] = _cache_files(cache_dir)
    raw = bytearray(path.read_bytes())
    if damage == "garbage":
        raw = bytearray(np.random.default_rng(0).integers(0, 256, len(raw), dtype=np.uint8).tobytes())
    elif damage == "truncated":
        raw = raw[:len(raw) // 2]
    elif damage == "zeroed array":
        raw[packed_cache.ALIGN:packed_cache.ALIGN + 64] = bytes(64)  # the first array's first bytes
    else:
        raw = bytearray()
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="e5np"):
        assert np.array_equal(E5Model(model_copy).encode(TEXTS), expected)
    assert any("unreadable" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
    key = packed_cache.cache_key(model_copy, [model_copy / "model.safetensors"], "numba")
    packed_cache.read_packed(path, key)  # rebuilt: valid again


def test_a_changed_checkpoint_is_never_served_from_its_old_cache(model_copy, cache_dir):
    before = E5Model(model_copy).encode(TEXTS)
    from safetensors.numpy import load_file, save_file

    tensors = load_file(model_copy / "model.safetensors")
    name = "encoder.layer.0.intermediate.dense.weight"
    tensors[name] = tensors[name] * np.float32(1.5)
    save_file(tensors, model_copy / "model.safetensors")
    after = E5Model(model_copy).encode(TEXTS)
    fresh = _packed_in_memory(model_copy)
    assert not np.array_equal(before, after)
    assert np.array_equal(after, fresh)
    assert len(_cache_files(cache_dir)) == 1  # the new cache replaced the old one


def test_an_unwritable_cache_folder_loads_as_before_and_says_so_once(model_copy, tmp_path, monkeypatch,
                                                                      expected, caplog):
    blocker = tmp_path / "a file, not a folder"
    blocker.write_text("x")
    monkeypatch.setenv("E5NP_CACHE_DIR", str(blocker))
    monkeypatch.setattr(packed_cache, "_said_unwritable", False)
    with caplog.at_level(logging.WARNING, logger="e5np"):
        assert np.array_equal(E5Model(model_copy).encode(TEXTS), expected)
        assert np.array_equal(E5Model(model_copy).encode(TEXTS), expected)
    said = [r for r in caplog.records if "cannot write packed weights" in r.getMessage()]
    assert len(said) == 1 and "E5NP_CACHE_DIR" in said[0].getMessage()


def test_caches_of_deleted_models_are_removed(model_copy, cache_dir, tmp_path):
    E5Model(model_copy)
    other = tmp_path / "other model"
    shutil.copytree(model_copy, other)
    E5Model(other)
    assert len(_cache_files(cache_dir)) == 2
    shutil.rmtree(model_copy)
    shutil.copytree(other, tmp_path / "third")
    E5Model(tmp_path / "third")  # writing a cache clears the files of folders that are gone
    names = [p.name for p in _cache_files(cache_dir)]
    assert len(names) == 2 and not any(n.startswith("model-") for n in names)


_EMBED = """
import resource, sys
import numpy as np
from e5np import E5Model
if len(sys.argv) > 3:
    limit = int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # writes past it fail: a full disk
np.save(sys.argv[2], E5Model(sys.argv[1]).encode({texts!r}))
""".format(texts=TEXTS)


def _embed_in_subprocess(folder, out, cache_dir, fsize_limit=None):
    env = {**os.environ, "E5NP_CACHE_DIR": str(cache_dir), "NUMBA_CACHE_DIR": os.path.dirname(_numba_cache())}
    args = [sys.executable, "-c", _EMBED, str(folder), str(out)] + ([str(fsize_limit)] if fsize_limit else [])
    return subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)


def _numba_cache():
    from e5np.kernels.jit import CACHE_DIR
    return CACHE_DIR


@rlimit_fsize
def test_a_full_disk_gives_the_right_embeddings_and_leaves_no_file(model_copy, cache_dir, tmp_path, expected):
    run = _embed_in_subprocess(model_copy, tmp_path / "out.npy", cache_dir, fsize_limit=100_000)  # the tiny model packs to ~640 kB
    _, err = run.communicate(timeout=600)
    assert run.returncode == 0, err
    assert np.array_equal(np.load(tmp_path / "out.npy"), expected)
    assert "cannot write packed weights" in err
    assert not list((cache_dir / "packed").glob("*")), "a failed write must leave nothing behind"


def test_two_processes_building_the_same_cache_at_once(model_copy, cache_dir, tmp_path, expected):
    runs = [_embed_in_subprocess(model_copy, tmp_path / f"out{i}.npy", cache_dir) for i in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
    for i in range(2):
        assert np.array_equal(np.load(tmp_path / f"out{i}.npy"), expected)
    assert [p.suffix for p in (cache_dir / "packed").iterdir()] == [".e5pack"]
    assert np.array_equal(E5Model(model_copy).encode(TEXTS), expected)
