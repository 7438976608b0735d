"""Texts -> token ids with the model's own tokenizer (the ``tokenizers`` package, ``tokenizer.json``):
WordPiece for BERT models, SentencePiece Unigram for XLM-R and multilingual E5.

Every text becomes [CLS] tokens... [SEP] (XLM-R: <s> ... </s>), cut to ``max_length`` ids in all.
Nothing is padded: the engine packs sequences end to end. Truncation is counted, never silent.
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer

from ..errors import ModelFileError

log = logging.getLogger("e5np")

_NO_LIMIT = 10**6  # tokenizer_config.json says 1e30 when it sets no limit


@dataclass(frozen=True)
class TokenizedBatch:
    ids: list[np.ndarray]    # one int32 array per text, [CLS] ... [SEP] or <s> ... </s>
    truncated: list[int]     # indices of the texts that were cut at max_length


class ModelTokenizer:
    def __init__(self, tokenizer: Tokenizer, max_length: int):
        self.max_length = max_length
        self._tokenizer = tokenizer
        self._tokenizer.no_padding()  # tokenizer.json files may pad to a fixed length
        self._tokenizer.enable_truncation(max_length)

    @classmethod
    def from_folder(cls, folder: Path, max_tokens: int, max_length: int | None = None):
        """``max_tokens``: the longest input the model's position table takes (``BertConfig.max_tokens``)."""
        return cls(_load_tokenizer(folder), resolve_max_length(folder, max_tokens, max_length))

    def tokenize(self, texts: list[str]) -> TokenizedBatch:
        encodings = self._tokenizer.encode_batch(texts)
        ids = [np.asarray(e.ids, dtype=np.int32) for e in encodings]
        truncated = [i for i, e in enumerate(encodings) if e.overflowing]
        return TokenizedBatch(ids, truncated)

    def tokens(self, texts: list[str], add_special_tokens: bool = True) -> list[list[dict]]:
        """Every token of each text, uncut, as TEI's ``/tokenize`` gives it: ``id``, ``text`` (the
        piece of the input it covers; a special token's own string), ``special``, and ``start`` /
        ``stop``, byte offsets into the text's UTF-8 (None for special tokens)."""
        out = []
        for text, e in zip(texts, self._uncut().encode_batch(texts, add_special_tokens=add_special_tokens)):
            byte_at = np.concatenate([[0], np.cumsum([len(c.encode("utf-8", "surrogatepass")) for c in text])])
            out.append([{"id": i, "text": token, "special": True, "start": None, "stop": None} if special else
                        {"id": i, "text": text[a:b], "special": False, "start": int(byte_at[a]), "stop": int(byte_at[b])}
                        for i, token, (a, b), special in zip(e.ids, e.tokens, e.offsets, e.special_tokens_mask)])
        return out

    def decode(self, ids: list[list[int]], skip_special_tokens: bool = True) -> list[str]:
        """Token ids -> text, one string per list (TEI's ``/decode``); ValueError naming an id outside the vocabulary."""
        vocab = self._tokenizer.get_vocab_size(with_added_tokens=True)
        for i, seq in enumerate(ids):
            bad = next((t for t in seq if not 0 <= t < vocab), None)
            if bad is not None:
                raise ValueError(f"ids[{i}] holds {bad}, outside the tokenizer's {vocab} ids")
        return self._tokenizer.decode_batch(ids, skip_special_tokens=skip_special_tokens)

    def _uncut(self) -> Tokenizer:
        """A copy without truncation, for ``tokens`` (the model's own copy stays cut at max_length;
        neither is changed once made, so threads may share both)."""
        if getattr(self, "_uncut_tokenizer", None) is None:
            uncut = Tokenizer.from_str(self._tokenizer.to_str())
            uncut.no_truncation()
            self._uncut_tokenizer = uncut
        return self._uncut_tokenizer


def _load_tokenizer(folder: Path) -> Tokenizer:
    path = folder / "tokenizer.json"
    if path.exists():
        try:
            return Tokenizer.from_file(str(path))
        except Exception as e:  # the tokenizers package raises plain Exception on bad files
            raise ModelFileError(f"{path}: not a valid tokenizer.json ({e})") from None
    vocab = folder / "vocab.txt"
    if not vocab.exists():
        spm = " (a sentencepiece.bpe.model alone is not enough: save the tokenizer with transformers' "\
              "XLMRobertaTokenizerFast to get tokenizer.json)" if any(folder.glob("*.model")) else ""
        raise ModelFileError(f"{folder}: no tokenizer.json or vocab.txt to build the tokenizer from{spm}")
    options = _read_json(folder / "tokenizer_config.json")
    wordpiece = BertWordPieceTokenizer(
        str(vocab),
        lowercase=options.get("do_lower_case", True),
        strip_accents=options.get("strip_accents"),
        handle_chinese_chars=options.get("tokenize_chinese_chars", True),
        clean_text=True,
    )
    return wordpiece._tokenizer


def resolve_max_length(folder: Path, max_tokens: int, override: int | None) -> int:
    """Longest input in tokens: the override, else sentence-transformers' ``max_seq_length``,
    else the tokenizer's ``model_max_length``; never above what the position table takes."""
    if override is not None:
        if not 2 <= override <= max_tokens:
            raise ValueError(f"max_length={override}: must be between 2 ([CLS] and [SEP]) and "
                             f"the {max_tokens} tokens the model's position table takes")
        return override
    for name, key in (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length")):
        value = _read_json(folder / name).get(key)
        if isinstance(value, (int, float)) and 2 <= value < _NO_LIMIT:
            return min(int(value), max_tokens)
    return max_tokens


def _read_json(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{path}: not valid JSON ({e})") from None
