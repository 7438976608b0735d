"""The model's weights as named structures, checked tensor by tensor against the config.

Checkpoint names are HF's (``encoder.layer.{i}.attention.self.query.weight`` ...); each field
below says which tensor it holds. The one layout change: query, key and value are stacked into
a single [3H, H] projection, so one GEMM reads the layer input once for all three.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from .checkpoint import checkpoint_files, read_tensors
from .config import BertConfig
from .heap import release_freed_memory
from .int8_linear import GEMM as INT8_GEMM
from .int8_linear import SMOOTHED, Int8Linear
from .linear import Linear
from .packed_cache import cached_packing
from .word_rows import WordRows


@dataclass(frozen=True)
class Norm:
    gamma: np.ndarray  # LayerNorm.weight [H]
    beta: np.ndarray   # LayerNorm.bias [H]


@dataclass(frozen=True)
class EmbeddingWeights:
    word: WordRows          # embeddings.word_embeddings.weight [vocab, H], read by rows
    position: np.ndarray    # embeddings.position_embeddings.weight [max_positions, H]
    token_type: np.ndarray  # embeddings.token_type_embeddings.weight [type_vocab, H]
    norm: Norm              # embeddings.LayerNorm


@dataclass(frozen=True)
class LayerWeights:
    qkv: Linear        # attention.self.{query,key,value}, stacked: [H] -> [3H]
    attn_out: Linear   # attention.output.dense: [H] -> [H]
    attn_norm: Norm    # attention.output.LayerNorm
    ffn_in: Linear     # intermediate.dense: [H] -> [I]
    ffn_out: Linear    # output.dense: [I] -> [H]
    ffn_norm: Norm     # output.LayerNorm


@dataclass(frozen=True)
class Weights:
    embeddings: EmbeddingWeights
    layers: list[LayerWeights]
    packed_file: Path | None = None  # the packed-weight cache file the Linear weights are mapped from


def expected_shapes(c: BertConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor the forward pass needs, with its shape (HF names, no ``bert.`` prefix)."""
    H, I = c.hidden_size, c.intermediate_size
    shapes = {
        "embeddings.word_embeddings.weight": (c.vocab_size, H),
        "embeddings.position_embeddings.weight": (c.max_position_embeddings, H),
        "embeddings.token_type_embeddings.weight": (c.type_vocab_size, H),
        "embeddings.LayerNorm.weight": (H,),
        "embeddings.LayerNorm.bias": (H,),
    }
    for i in range(c.num_hidden_layers):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            shapes[p + name + ".weight"], shapes[p + name + ".bias"] = (H, H), (H,)
        shapes[p + "intermediate.dense.weight"], shapes[p + "intermediate.dense.bias"] = (I, H), (I,)
        shapes[p + "output.dense.weight"], shapes[p + "output.dense.bias"] = (H, I), (H,)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + name + ".weight"], shapes[p + name + ".bias"] = (H,), (H,)
    return shapes


def check_tensors(tensors: dict[str, np.ndarray], config: BertConfig, folder: Path) -> None:
    """Raise naming the first tensor that is missing or of the wrong shape or dtype."""
    for name, shape in expected_shapes(config).items():
        legacy = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        if name not in tensors and legacy in tensors:
            tensors[name] = tensors.pop(legacy)  # old checkpoints name LayerNorm parameters gamma/beta
        if name not in tensors:
            raise ModelFileError(f"{folder}: tensor {name!r} is missing from the checkpoint "
                                 f"(config.json asks for {config.num_hidden_layers} layers of hidden size {config.hidden_size})")
        t = tensors[name]
        if t.dtype != np.float32:
            raise ModelFileError(f"{folder}: tensor {name!r} has dtype {t.dtype}, expected a float type")
        if tuple(t.shape) != shape:
            raise ModelFileError(f"{folder}: tensor {name!r} has shape {tuple(t.shape)}, but config.json implies {shape}")


# The Linear layers of a layer, with their checkpoint names (query, key and value are stacked)
# and whether a bf16 GEMM holds the weight as hi + lo parts. attn_out is split: made exact, this
# Linear removed the largest share of the bf16 path's error on the e5-large fixture (41%); split,
# min cosine to fp32 0.99990 -> 0.99993, ~5% more time.
LINEARS = {
    "qkv": (("attention.self.query", "attention.self.key", "attention.self.value"), False),
    "attn_out": (("attention.output.dense",), True),
    "ffn_in": (("intermediate.dense",), False),
    "ffn_out": (("output.dense",), False),
}


def load_weights(folder: Path, config: BertConfig, gemm: str, calibrate=None) -> Weights:
    """The model's weights, packed for ``gemm`` (from the packed cache where it holds them). The
    int8 path needs ``calibrate``: a function returning the calibration pass's per-layer input
    maxima (``calibration.input_maxima``), called only when the weights are packed, not cached."""
    if gemm == INT8_GEMM and calibrate is None:
        raise ValueError("int8 weights are made with the calibration pass: pass calibrate=")
    t = read_tensors(folder)
    check_tensors(t, config, folder)

    def pack_all():
        """(name, array) for every Linear's packed weight and bias, one at a time; its own
        memory maps of the checkpoint, each released as soon as its weight has been packed."""
        source = read_tensors(folder)
        check_tensors(source, config, folder)
        maxima = calibrate() if gemm == INT8_GEMM else None  # int8: the calibration pass
        for i in range(config.num_hidden_layers):
            for field, (names, split) in LINEARS.items():
                p = f"encoder.layer.{i}."
                weights = [source.pop(p + n + ".weight") for n in names]
                weight = weights[0] if len(weights) == 1 else np.concatenate(weights)
                if maxima is None:
                    yield f"{i}.{field}.weight", Linear.pack(weight, gemm, split)
                else:
                    for part, a in Int8Linear.pack(weight, maxima[i][field], field in SMOOTHED).items():
                        yield f"{i}.{field}.{part}", a
                yield f"{i}.{field}.bias", np.concatenate([source.pop(p + n + ".bias") for n in names])

    # the fp32 BLAS path reads the checkpoint as it is: nothing to cache
    packed, packed_file = ((dict(pack_all()), None) if gemm == "blas"
                           else cached_packing(folder, checkpoint_files(folder), gemm, pack_all))

    def linear(i, field):
        if gemm == INT8_GEMM:
            return Int8Linear.from_packed({part: packed[f"{i}.{field}.{part}"] for part in Int8Linear.PARTS},
                                          packed[f"{i}.{field}.bias"])
        return Linear.from_packed(packed[f"{i}.{field}.weight"], packed[f"{i}.{field}.bias"], gemm, LINEARS[field][1])

    def norm(name):
        return Norm(t[name + ".weight"], t[name + ".bias"])

    embeddings = EmbeddingWeights(
        word=WordRows(t["embeddings.word_embeddings.weight"]),
        position=t["embeddings.position_embeddings.weight"],
        token_type=t["embeddings.token_type_embeddings.weight"],
        norm=norm("embeddings.LayerNorm"),
    )
    layers = [LayerWeights(
        qkv=linear(i, "qkv"),
        attn_out=linear(i, "attn_out"),
        attn_norm=norm(f"encoder.layer.{i}.attention.output.LayerNorm"),
        ffn_in=linear(i, "ffn_in"),
        ffn_out=linear(i, "ffn_out"),
        ffn_norm=norm(f"encoder.layer.{i}.output.LayerNorm"),
    ) for i in range(config.num_hidden_layers)]
    release_freed_memory()
    return Weights(embeddings, layers, packed_file)
