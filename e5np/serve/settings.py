"""The server's options: one table, read from the command line or from ``E5NP_*`` variables.

Every option ``--max-queue`` also comes from ``E5NP_MAX_QUEUE``; a flag given on the command line
wins over the variable, and the variable over the default.
"""

import argparse
import os
from dataclasses import dataclass

from ..engine import MAX_BATCH_TOKENS
from ..runtime import PRECISIONS

PREFIX_CHOICES = ("none", "query", "passage")  # a role ("query", "passage": E5Model.role_prompt) or none


@dataclass(frozen=True)
class Option:
    flag: str
    type: type
    default: object
    help: str
    choices: tuple | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def env(self) -> str:
        return "E5NP_" + self.dest.upper()


OPTIONS = [
    Option("--model", str, "intfloat/e5-large", "model folder or Hub id"),
    Option("--host", str, "127.0.0.1", "address to bind (0.0.0.0 for every interface)"),
    Option("--port", int, 8080, "port to bind"),
    Option("--api-key", str, None, "require 'Authorization: Bearer KEY' (/health and /metrics stay open)"),
    Option("--precision", str, "fp32", "fp32 (exact), bf16 (AMX or AVX512-BF16), auto (bf16 where it runs), int8 (VNNI, opt-in)", PRECISIONS),
    Option("--default-prefix", str, "none",
           "prefix for requests that name none: query, passage, or none (texts as sent)", PREFIX_CHOICES),
    Option("--served-model-name", str, None, "the 'model' in replies (default: the --model's last part)"),
    Option("--max-client-batch-size", int, 2048, "texts a request may hold at most"),
    Option("--max-batch-tokens", int, MAX_BATCH_TOKENS, "tokens the model thread takes per step at most"),
    Option("--max-queue", int, 4096, "texts waiting at most; past it a request gets 429"),
    Option("--payload-limit", int, 2_000_000, "request body in bytes at most"),
    Option("--cache-mb", float, 64.0, "MiB of embeddings kept for repeated texts (exact: batch-invariant); 0: none"),
    Option("--body-timeout", float, 30.0, "seconds a client may take to send its request body (then 408)"),
    Option("--header-timeout", float, 10.0, "seconds a connection may take to send a request's headers (then closed)"),
    Option("--max-length", int, None, "truncate inputs to this many tokens (default: the model's)"),
    Option("--num-threads", int, None, "Numba threads of the model (default: the CPUs this process may use)"),
    Option("--graceful-timeout", float, 30.0, "seconds to finish accepted requests on SIGTERM"),
]


@dataclass(frozen=True)
class ServeSettings:
    model: str = "intfloat/e5-large"
    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str | None = None
    precision: str = "fp32"
    default_prefix: str = "none"
    served_model_name: str | None = None
    max_client_batch_size: int = 2048
    max_batch_tokens: int = MAX_BATCH_TOKENS
    max_queue: int = 4096
    payload_limit: int = 2_000_000
    body_timeout: float = 30.0
    header_timeout: float = 10.0
    cache_mb: float = 64.0
    max_length: int | None = None
    num_threads: int | None = None
    graceful_timeout: float = 30.0

    def __post_init__(self):
        for name in ("max_client_batch_size", "max_batch_tokens", "max_queue", "payload_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        if not self.cache_mb >= 0:
            raise ValueError(f"--cache-mb must be 0 (no cache) or more, not {self.cache_mb}")
        for name in ("body_timeout", "header_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be more than 0 seconds, not {getattr(self, name)}")
        if self.max_queue < self.max_client_batch_size:
            raise ValueError(f"--max-queue ({self.max_queue}) must be at least --max-client-batch-size "
                             f"({self.max_client_batch_size}): a full request must fit the queue")

    @property
    def model_name(self) -> str:
        return self.served_model_name or self.model.rstrip("/").split("/")[-1]

    @property
    def role(self) -> str | None:
        """The role of requests that name none: "query", "passage", or None (texts as sent)."""
        return None if self.default_prefix == "none" else self.default_prefix


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Each option as a flag whose default is its ``E5NP_*`` variable, else the table's."""
    for option in OPTIONS:
        default = os.environ.get(option.env, option.default)
        if default is not None:
            try:
                default = option.type(default)
            except ValueError:
                raise ValueError(f"${option.env}={default!r} is not a valid {option.flag}") from None
        parser.add_argument(option.flag, type=option.type, default=default, choices=option.choices,
                            help=f"{option.help} (${option.env})")


def from_arguments(args: argparse.Namespace) -> ServeSettings:
    return ServeSettings(**{option.dest: getattr(args, option.dest) for option in OPTIONS})
