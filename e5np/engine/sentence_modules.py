"""What comes after the encoder, as a sentence-transformers folder declares it: pooling, Normalize, prompts.

``modules.json`` lists the modules (Transformer, Pooling, Normalize ...), ``1_Pooling/config.json``
the pooling mode, ``config_sentence_transformers.json`` the named prompts. A folder without
``modules.json`` gets E5's own recipe: mean pooling, then L2 normalization. A module or mode
e5np does not implement is refused by name: skipping it would give wrong vectors without a word.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelFileError, UnsupportedModelError

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len_tokens")  # the names kernels/pooling.py MODES numbers
_LEGACY_POOLING_KEYS = {  # sentence-transformers < 6 saved one flag per mode
    "pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean", "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
INSTRUCT = "Instruct: {task}\nQuery: "  # multilingual-e5-large-instruct's query template


@dataclass(frozen=True)
class SentenceModules:
    pooling: str = "mean"          # one of POOLING_MODES
    normalize: bool = True         # a Normalize module follows the pooling
    prompts: dict[str, str] = field(default_factory=dict)  # config_sentence_transformers.json "prompts"
    default_prompt_name: str | None = None

    @property
    def takes_instructions(self) -> bool:
        """An E5-instruct model: its query prompts read "Instruct: ...\\nQuery: "."""
        return any(p.startswith("Instruct: ") and p.endswith("\nQuery: ") for p in self.prompts.values())

    def query_prompt(self, task: str | None) -> str | None:
        """The model's own query prompt (None: it has none, use E5's "query: ")."""
        if task is not None:
            if not self.takes_instructions:
                raise ValueError("task= is for instruction-tuned models (multilingual-e5-large-instruct); "
                                 "this model's prompts take no instruction")
            return INSTRUCT.format(task=task)
        if "query" in self.prompts:
            return self.prompts["query"]
        if self.takes_instructions:
            raise ValueError("this instruction-tuned model needs task= (e.g. task='Given a web search query, "
                             f"retrieve relevant passages that answer the query') or prompt_name= one of {sorted(self.prompts)}")
        return None

    def passage_prompt(self) -> str | None:
        """The model's own passage prompt ("" for models that embed documents as they are)."""
        for name in ("passage", "document", "text"):
            if name in self.prompts:
                return self.prompts[name]
        return "" if self.prompts else None

    def prompt(self, name: str) -> str:
        if name not in self.prompts:
            raise ValueError(f"prompt_name={name!r}: the model's prompts are {sorted(self.prompts) or 'none'} "
                             "(config_sentence_transformers.json)")
        return self.prompts[name]

    @classmethod
    def from_folder(cls, folder: Path) -> "SentenceModules":
        prompts, default = _read_prompts(folder)
        modules_file = folder / "modules.json"
        if not modules_file.exists():
            return cls(prompts=prompts, default_prompt_name=default)
        modules = _read_json(modules_file)
        if not isinstance(modules, list):
            raise ModelFileError(f"{modules_file}: expected a list of modules")
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        for module, kind in zip(modules, kinds):
            if kind not in ("Transformer", "Pooling", "Normalize"):
                raise UnsupportedModelError(
                    f"{modules_file}: module {module.get('type')!r} ({module.get('path')}) is not implemented; "
                    "e5np runs Transformer, then Pooling, then optionally Normalize")
        if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
            raise UnsupportedModelError(f"{modules_file}: modules {kinds}; e5np runs Transformer, Pooling[, Normalize]")
        if modules[0].get("path", "") not in ("", "."):
            raise UnsupportedModelError(f"{modules_file}: the encoder lives in {modules[0]['path']!r}: "
                                        f"load {folder / modules[0]['path']} instead")
        pooling = _pooling_mode(folder / modules[1].get("path", "1_Pooling") / "config.json")
        return cls(pooling, "Normalize" in kinds, prompts, default)


def _pooling_mode(path: Path) -> str:
    config = _read_json(path)
    mode = config.get("pooling_mode")
    if mode is None:
        modes = [m for key, m in _LEGACY_POOLING_KEYS.items() if config.get(key)]
        mode = modes if len(modes) != 1 else modes[0]
        if not modes:
            mode = "mean"  # what sentence-transformers does when no flag is set
    if isinstance(mode, list) and len(mode) == 1:
        mode = mode[0]
    if not isinstance(mode, str) or mode not in POOLING_MODES:
        raise UnsupportedModelError(f"{path}: pooling mode {mode!r} is not implemented; e5np pools by "
                                    f"{', '.join(POOLING_MODES)} (one mode)")
    if config.get("include_prompt", True) is False:
        raise UnsupportedModelError(f"{path}: include_prompt false (prompt tokens left out of pooling) is not implemented")
    return mode


def _read_prompts(folder: Path) -> tuple[dict[str, str], str | None]:
    path = folder / "config_sentence_transformers.json"
    if not path.exists():
        return {}, None
    config = _read_json(path)
    prompts = config.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise ModelFileError(f"{path}: 'prompts' must map names to strings")
    default = config.get("default_prompt_name")
    if default is not None and default not in prompts:
        raise ModelFileError(f"{path}: default_prompt_name {default!r} is not one of the prompts {sorted(prompts)}")
    return prompts, default


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing (modules.json names it)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{path}: not valid JSON ({e})") from None
