"""``E5Model``: the public API. Texts in, float32 embeddings out, with the E5 model card's conventions."""

import contextlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import UnencodableTextError
from ..runtime import Precision, ThreadChoice, choose_precision, usable_cpus
from .batching import MAX_BATCH_TOKENS, length_sorted_batches, pack, pack_padded
from .calibration import input_maxima
from .config import BertConfig
from .encoder import encode_packed, pool
from .hub import resolve_model_folder
from .int8_linear import GEMM as INT8_GEMM
from .linear import BF16_GEMMS
from .progress import progress_bar
from .sentence_modules import SentenceModules
from .tokenization import ModelTokenizer, TokenizedBatch
from .weights import load_weights
from .workspace import Workspace

log = logging.getLogger("e5np")

QUERY, PASSAGE = "query: ", "passage: "
DEFAULT_GEMM = "numba"  # batch-invariant, more exact, and faster end to end here; see README "GEMM"


class Embeddings(np.ndarray):
    """A float32 [n, hidden] array from ``encode``, which also says what tokenization cut.

    ``truncated``: indices of the texts longer than ``max_length`` tokens (cut to fit);
    ``None`` on arrays derived from it by arithmetic, which carry no such record.
    """
    truncated: list[int] | None = None

    @property
    def num_truncated(self) -> int | None:
        return None if self.truncated is None else len(self.truncated)


@dataclass(frozen=True)
class ForwardOutput:
    hidden_states: list[np.ndarray]  # num_layers + 1 arrays [n, L, H]: embeddings, then each layer; 0 at padding
    embeddings: np.ndarray           # [n, H] pooled as the model's modules say (E5: mean), L2-normalized


class E5Model:
    def __init__(self, folder, *, max_length: int | None = None, precision: str = "fp32",
                 gemm: str | None = None, num_threads: int | None = None, max_batch_tokens: int = MAX_BATCH_TOKENS,
                 adapt_threads: bool = True):
        """``precision``: "fp32" (default; exact parity with transformers), "bf16" (GEMMs on AMX,
        else on AVX512-BF16, falling back to fp32 with one logged line where the CPU has neither),
        "auto" (bf16 where either is usable), or "int8" (by name only: int8 GEMMs on AVX512-VNNI with
        weights calibrated once, ``docs/precision.md``; where the CPU lacks VNNI, what "bf16" runs, with
        one logged line). ``gemm`` picks the fp32 GEMM: "numba" (default) or "blas".
        ``max_batch_tokens``: the default token cap of a forward pass (see ``encode``).
        ``num_threads``: at most this many threads (default: the CPUs this process may use, its
        cgroup quota included); with ``adapt_threads`` each forward pass runs on one thread or on
        all of them, whichever measured faster for passes of its size (``e5np.runtime.threads``)."""
        self.max_batch_tokens = _at_least_one("max_batch_tokens", max_batch_tokens)
        folder = Path(folder)
        self.folder = folder
        self.precision_choice: Precision = choose_precision(precision)
        self.gemm = _gemm_for(self.precision_choice, gemm)
        self.config = BertConfig.from_file(folder / "config.json")
        self.modules = SentenceModules.from_folder(folder)  # pooling, Normalize, prompts
        self.tokenizer = ModelTokenizer.from_folder(folder, self.config.max_tokens, max_length)
        calibrate = (lambda: input_maxima(E5Model(folder, gemm="blas"))) if self.gemm == INT8_GEMM else None
        self.weights = load_weights(folder, self.config, self.gemm, calibrate)
        self.num_threads = _at_least_one("num_threads", num_threads) if num_threads is not None else usable_cpus()[0]
        self._numba_threads = min(self.num_threads, numba.config.NUMBA_NUM_THREADS)
        self._thread_choice = ThreadChoice(self._numba_threads) if adapt_threads and self.gemm != "blas" else None
        self._workspace = Workspace()
        self._lock = threading.Lock()  # the workspace is shared: one forward pass at a time

    @classmethod
    def from_pretrained(cls, name_or_path, **kwargs) -> "E5Model":
        """A local folder, or a Hub id (``intfloat/e5-large``) from the cache or a download."""
        return cls(resolve_model_folder(name_or_path), **kwargs)

    @property
    def precision(self) -> str:
        """The path in use: "fp32", "bf16-amx", "bf16-avx512" or "int8-vnni" (``precision_reason`` says why)."""
        return self.precision_choice.path

    @property
    def precision_reason(self) -> str:
        return self.precision_choice.reason

    @property
    def packed_file(self) -> Path | None:
        """The cache file the packed GEMM weights are mapped from (None: packed in memory)."""
        return self.weights.packed_file

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    @property
    def max_length(self) -> int:
        return self.tokenizer.max_length

    # --- texts -> embeddings -------------------------------------------------------------
    def encode(self, texts, batch_size: int = 32, normalize: bool | None = None, prefix: str | None = None,
               show_progress_bar: bool = False, *, normalize_embeddings: bool | None = None,
               prompt: str | None = None, prompt_name: str | None = None, convert_to_numpy: bool = True,
               convert_to_tensor: bool = False, log_truncation: bool = True, max_batch_tokens: int | None = None,
               **unsupported) -> Embeddings:
        """Embed texts as float32 [n, hidden] (one text: [hidden]), pooled as the model's
        sentence-transformers modules say (E5: mean) and L2-normalized unless ``normalize`` is
        False (default: when the model has a Normalize module, or no modules.json, as E5 folders).

        ``prefix`` ("query: " / "passage: ") is added unless a text already starts with it;
        ``prompt`` (sentence-transformers' name) is prepended as given, or the model's prompt
        named ``prompt_name`` (config_sentence_transformers.json; its default_prompt_name when
        nothing else is given). sentence-transformers' ``normalize_embeddings``, ``convert_to_numpy``
        are accepted too. Texts cut at
        ``max_length`` are listed in the result's ``truncated`` and, unless ``log_truncation`` is
        False (callers that report a total themselves), in one logged warning. A forward pass
        takes at most ``batch_size`` texts and ``max_batch_tokens`` tokens (default: the model's;
        memory scales with it); neither changes any embedding, bit for bit.
        """
        if unsupported:
            raise TypeError(f"encode() got unsupported keyword arguments {sorted(unsupported)}")
        if convert_to_tensor or not convert_to_numpy:
            raise ValueError("e5np returns NumPy arrays only (convert_to_numpy=True, convert_to_tensor=False)")
        if isinstance(texts, str):
            return self.encode([texts], batch_size, normalize, prefix, show_progress_bar,
                               normalize_embeddings=normalize_embeddings, prompt=prompt, prompt_name=prompt_name,
                               max_batch_tokens=max_batch_tokens)[0]
        if normalize_embeddings is not None:
            normalize = normalize_embeddings
        tokens = self.tokenize(texts, prefix=prefix, prompt=self._prompt(prompt, prompt_name, prefix))
        if tokens.truncated and log_truncation:
            self.warn_truncated(len(tokens.truncated), len(tokens.ids), tokens.truncated[0])
        out = self.encode_tokens(tokens.ids, batch_size, normalize, show_progress_bar,
                                 max_batch_tokens=max_batch_tokens).view(Embeddings)
        out.truncated = tokens.truncated
        return out

    def tokenize(self, texts, prefix: str | None = None, prompt: str | None = None) -> TokenizedBatch:
        """Texts -> token ids, [CLS] ... [SEP] cut at ``max_length`` (``.truncated`` lists the cut
        texts). ``prefix`` and ``prompt`` as in ``encode``. With ``encode_tokens``, the two halves of
        ``encode``: a server counts and checks tokens before it queues them."""
        texts = self.prompted(texts, prefix, prompt)
        try:
            return self.tokenizer.tokenize(texts)
        except TypeError:  # the tokenizers package's own message names neither the text nor the cause
            _raise_unencodable(texts)
            raise

    def tokens(self, texts, prefix: str | None = None, prompt: str | None = None,
               add_special_tokens: bool = True) -> list[list[dict]]:
        """Every token of each (prompted) text, uncut, with its piece of the text and byte offsets
        (TEI's ``/tokenize``; ``ModelTokenizer.tokens``)."""
        texts = self.prompted(texts, prefix, prompt)
        try:
            return self.tokenizer.tokens(texts, add_special_tokens)
        except TypeError:
            _raise_unencodable(texts)
            raise

    @staticmethod
    def prompted(texts, prefix: str | None = None, prompt: str | None = None) -> list[str]:
        """The texts as the tokenizer sees them: ``prefix`` added unless there, ``prompt`` prepended."""
        texts = _check_texts(texts)
        if prefix:
            texts = [t if t.startswith(prefix) else prefix + t for t in texts]
        if prompt:
            texts = [prompt + t for t in texts]
        return texts

    def _prompt(self, prompt: str | None, prompt_name: str | None, prefix: str | None) -> str | None:
        if prompt is not None and prompt_name is not None:
            raise ValueError("give prompt= or prompt_name=, not both")
        if prompt_name is not None:
            return self.modules.prompt(prompt_name)
        if prompt is None and prefix is None and self.modules.default_prompt_name:
            return self.modules.prompt(self.modules.default_prompt_name)
        return prompt

    def encode_tokens(self, ids: list[np.ndarray], batch_size: int = 32, normalize: bool | None = None,
                      show_progress_bar: bool = False, *, max_batch_tokens: int | None = None) -> np.ndarray:
        """Token-id arrays from ``tokenize`` -> float32 [n, hidden], exactly as ``encode`` gives them:
        sorted by length into forward passes of at most ``batch_size`` texts and ``max_batch_tokens``
        tokens, which change no embedding, bit for bit."""
        _at_least_one("batch_size", batch_size)
        max_batch_tokens = self.max_batch_tokens if max_batch_tokens is None else _at_least_one(
            "max_batch_tokens", max_batch_tokens)
        normalize = self.modules.normalize if normalize is None else normalize
        self._check_lengths(ids)
        out = np.zeros((len(ids), self.hidden_size), np.float32)
        batches = length_sorted_batches([len(seq) for seq in ids], batch_size, max_batch_tokens)
        progress = progress_bar(show_progress_bar, total=len(ids))
        with self._lock, self._blas_threads():
            for indices in batches:
                batch = pack([ids[i] for i in indices], self.config.position_pad_id)
                with self._pass_threads(batch.num_tokens):
                    x = encode_packed(batch, self.weights, self.config, self._workspace)
                    out[indices] = pool(x, batch, self.modules.pooling, normalize)
                progress.update(len(indices))
        progress.close()
        return out

    def token_states(self, ids: list[np.ndarray], batch_size: int = 32) -> list[np.ndarray]:
        """Token-id arrays from ``tokenize`` -> each text's last hidden state, float32 [len, hidden]
        (every token's, [CLS] and [SEP] included: TEI's ``/embed_all``), batched as ``encode_tokens``
        batches, which changes no value, bit for bit."""
        self._check_lengths(ids)
        out: list[np.ndarray] = [None] * len(ids)
        with self._lock, self._blas_threads():
            for indices in length_sorted_batches([len(seq) for seq in ids], batch_size, self.max_batch_tokens):
                batch = pack([ids[i] for i in indices], self.config.position_pad_id)
                with self._pass_threads(batch.num_tokens):
                    x = encode_packed(batch, self.weights, self.config, self._workspace)
                    for j, i in enumerate(indices):
                        out[i] = x[batch.seq_starts[j]:batch.seq_starts[j + 1]].copy()
        return out

    def _check_lengths(self, ids: list[np.ndarray]) -> None:
        for i, seq in enumerate(ids):
            if not 0 < len(seq) <= self.config.max_tokens:
                raise ValueError(f"ids[{i}] has {len(seq)} tokens; a sequence takes 1 to "
                                 f"{self.config.max_tokens} (the model's position table)")

    def encode_iter(self, texts, batch_size: int = 32, chunk_size: int = 1024, **kwargs):
        """Embed an iterable of texts lazily: yields one ``encode`` result per ``chunk_size`` texts,
        in order, holding only the current chunk (for corpora larger than memory). Truncation is
        logged once, at the end, for the whole iterable."""
        chunk, seen, truncated, first = [], 0, 0, None

        def run():
            nonlocal truncated, first
            out = self.encode(chunk, batch_size, log_truncation=False, **kwargs)
            if out.truncated and first is None:
                first = seen - len(chunk) + out.truncated[0]
            truncated += len(out.truncated)
            return out

        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"texts[{seen}] is {type(text).__name__}, not str")
            chunk.append(text)
            seen += 1
            if len(chunk) == chunk_size:
                yield run()
                chunk = []
        if chunk:
            yield run()
        if truncated:
            self.warn_truncated(truncated, seen, first)

    def warn_truncated(self, count: int, total: int, first: int) -> None:
        log.warning("%d of %d texts were longer than %d tokens and were truncated (first: text %d)",
                    count, total, self.max_length, first)

    def encode_queries(self, texts, task: str | None = None, **kwargs) -> Embeddings:
        """encode() for search queries: with the model's own query prompt where it has one (bge's
        instruction; multilingual-e5-large-instruct's "Instruct: {task}\nQuery: ", which needs
        ``task``), else with the "query: " prefix E5 was trained with."""
        return self.encode(texts, **self.role_prompt("query", task), **kwargs)

    def encode_passages(self, texts, **kwargs) -> Embeddings:
        """encode() for documents: with the model's own passage prompt where it has prompts
        (none for bge and E5-instruct), else with the "passage: " prefix E5 was trained with."""
        return self.encode(texts, **self.role_prompt("passage"), **kwargs)

    def role_prompt(self, role: str, task: str | None = None) -> dict:
        """``encode`` arguments for "query" or "passage" texts: {"prompt": the model's own} where
        its config_sentence_transformers.json has prompts, else {"prefix": E5's "query: " / "passage: "}."""
        prompt = self.modules.query_prompt(task) if role == "query" else self.modules.passage_prompt()
        if prompt is None:
            return {"prefix": QUERY if role == "query" else PASSAGE}
        return {"prompt": prompt}

    @staticmethod
    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cosine similarity [len(a), len(b)] (plain dot products when both are normalized)."""
        a, b = np.atleast_2d(a).astype(np.float32), np.atleast_2d(b).astype(np.float32)
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return a @ b.T

    # --- token ids -> every layer, for parity work ------------------------------------------
    def forward(self, input_ids, attention_mask=None) -> ForwardOutput:
        """HF-layout [n, L] ids and mask -> every layer's hidden states [n, L, H] and the
        pooled, normalized embeddings. Padding positions are not computed (zeros)."""
        input_ids = np.asarray(input_ids)
        mask = np.ones_like(input_ids) if attention_mask is None else np.asarray(attention_mask)
        if input_ids.ndim != 2 or mask.shape != input_ids.shape:
            raise ValueError(f"input_ids {input_ids.shape} and attention_mask {mask.shape} must be the same [n, L] shape")
        if input_ids.shape[1] > self.config.max_tokens:
            raise ValueError(f"sequence length {input_ids.shape[1]} exceeds the {self.config.max_tokens} "
                             f"tokens the model's position table takes")
        if input_ids.size and (input_ids.min() < 0 or input_ids.max() >= self.config.vocab_size):
            raise ValueError(f"input_ids must lie in [0, {self.config.vocab_size})")
        batch = pack_padded(input_ids, mask, self.config.position_pad_id)
        layers: list[np.ndarray] = []
        with self._lock, self._blas_threads(), self._pass_threads(batch.num_tokens):
            x = encode_packed(batch, self.weights, self.config, self._workspace, hidden_states=layers)
            embeddings = pool(x, batch, self.modules.pooling, normalize=True)
        rows, cols = np.nonzero(mask)
        padded = []
        for layer in layers:
            full = np.zeros(input_ids.shape + (self.hidden_size,), np.float32)
            full[rows, cols] = layer
            padded.append(full)
        return ForwardOutput(padded, embeddings)

    def _blas_threads(self):
        """On the BLAS path, BLAS gets num_threads too (no oversubscription beside Numba's)."""
        return threadpool_limits(self.num_threads) if self.gemm == "blas" else contextlib.nullcontext()

    @contextlib.contextmanager
    def _pass_threads(self, tokens: int):
        """Numba's threads for one forward pass: all of them, or what ``ThreadChoice`` measured faster."""
        if self._thread_choice is None:
            numba.set_num_threads(self._numba_threads)
            yield
            return
        with self._thread_choice.timed(tokens) as threads:
            numba.set_num_threads(threads)
            yield

    def __repr__(self):
        c = self.config
        return (f"E5Model({str(self.folder)!r}, layers={c.num_hidden_layers}, hidden={c.hidden_size}, "
                f"max_length={self.max_length}, precision={self.precision!r}, gemm={self.gemm!r}, num_threads={self.num_threads}, "
                f"adapt_threads={self._thread_choice is not None})")


def packed_weights_status(name_or_path, precision: str = "fp32") -> str:
    """Whether loading this model (a folder, or a Hub id as ``from_pretrained`` takes it) at this
    precision would map cached packed weights: one line."""
    from .checkpoint import checkpoint_files
    from .packed_cache import cache_status

    folder = resolve_model_folder(name_or_path)
    gemm = _gemm_for(choose_precision(precision), None)
    if gemm == "blas":
        return "nothing to pack (the BLAS GEMM reads the checkpoint)"
    return cache_status(Path(folder), checkpoint_files(Path(folder)), gemm)


def _gemm_for(choice: Precision, gemm: str | None) -> str:
    if gemm in BF16_GEMMS or gemm == INT8_GEMM:
        raise ValueError(f"gemm={gemm!r} is chosen by precision='bf16' or 'int8', not by name")
    if choice.is_int8:
        if gemm is not None:
            raise ValueError(f"gemm={gemm!r} picks an fp32 GEMM, but precision='int8' runs {choice.path}; drop one of the two")
        return INT8_GEMM
    if choice.requested == "int8":
        log.warning("precision='int8': %s", choice.reason)
    if choice.is_bf16:
        if gemm is not None:
            raise ValueError(f"gemm={gemm!r} picks an fp32 GEMM, but precision={choice.requested!r} runs "
                             f"{choice.path}; drop one of the two")
        return "amx-bf16" if choice.path == "bf16-amx" else "avx512-bf16"
    if choice.requested == "bf16":
        log.warning("precision='bf16': %s", choice.reason)
    elif choice.requested == "auto":
        log.info("precision='auto': %s", choice.reason)
    return gemm or DEFAULT_GEMM


def _at_least_one(name: str, value: int) -> int:
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")
    return value


def _check_texts(texts) -> list[str]:
    if isinstance(texts, (bytes, bytearray, memoryview)):
        raise TypeError(f"texts is {type(texts).__name__}: decode it to str first (e.g. texts.decode('utf-8'))")
    if isinstance(texts, Mapping):
        raise TypeError("texts is a dict: pass a list of strings (a dict's keys would be embedded without a word)")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"texts must be a string or a list of strings, not {type(texts).__name__}") from None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            hint = ": decode it to str first" if isinstance(t, (bytes, bytearray)) else ""
            raise TypeError(f"texts[{i}] is {type(t).__name__}, not str{hint}")
    return texts


def _raise_unencodable(texts: list[str]) -> None:
    """Name the first text that is not valid Unicode (a lone surrogate, e.g. from JSON's "\\ud800")."""
    for i, t in enumerate(texts):
        try:
            t.encode("utf-8")
        except UnicodeEncodeError as e:
            raise UnencodableTextError(i, t[e.start], e.start) from None
