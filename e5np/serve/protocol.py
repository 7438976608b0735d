"""Request bodies in, checked; errors out in the shape each client expects.

Two dialects share one request model: OpenAI's ``/v1/embeddings`` and TEI's ``/embed`` and
``/similarity``. Every refusal is a ``RequestError`` naming the field (``input[3]``) and what is
wrong with it; ``ERROR_STATUS`` maps its kind to the status and error type of each dialect.
"""

import json
from dataclasses import dataclass

try:
    import orjson
except ImportError:  # the serve extra asks for it; plain json works, only slower (25 ms vs 1 ms for 32 x 1024)
    orjson = None

ROLES = ("query", "passage")  # prompt_name / input_type: the model's own prompt for it, else E5's prefix
ENCODING_FORMATS = ("float", "base64")

# kind -> (OpenAI status, OpenAI type, TEI status, TEI error_type)
ERROR_STATUS = {
    "syntax": (400, "invalid_request_error", 400, "Validation"),  # not JSON at all: axum's rejection in TEI is a 400
    "validation": (400, "invalid_request_error", 422, "Validation"),
    "empty": (400, "invalid_request_error", 400, "Empty"),
    "too_many_texts": (413, "invalid_request_error", 422, "Validation"),
    "too_long": (413, "invalid_request_error", 413, "Validation"),
    "payload": (413, "invalid_request_error", 413, "Validation"),
    "unauthorized": (401, "invalid_request_error", 401, "Unauthorized"),
    "overloaded": (429, "rate_limit_error", 429, "Overloaded"),
    "unavailable": (503, "server_error", 503, "Unhealthy"),
    "backend": (500, "server_error", 500, "Backend"),
    "not_found": (404, "invalid_request_error", 404, "NotFound"),
    "method": (405, "invalid_request_error", 405, "Validation"),
    "timeout": (408, "invalid_request_error", 408, "Validation"),
    "disconnected": (499, "invalid_request_error", 499, "Validation"),  # nginx's "client closed request": no one reads it
}


class RequestError(Exception):
    def __init__(self, kind: str, message: str, param: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.kind, self.message, self.param, self.retry_after = kind, message, param, retry_after

    def openai(self) -> tuple[int, dict]:
        status, kind = ERROR_STATUS[self.kind][:2]
        return status, {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.kind}}

    def tei(self) -> tuple[int, dict]:
        status, kind = ERROR_STATUS[self.kind][2:]
        return status, {"error": self.message, "error_type": kind}


@dataclass(frozen=True)
class EmbedRequest:
    field: str                    # "input" or "inputs": how errors name a text
    texts: list[str]
    role: str | None              # "query", "passage" or None (texts as sent): E5Model.role_prompt
    normalize: bool = True
    truncate: bool = True         # False: a text over max_length tokens is refused (413), not cut
    dimensions: int | None = None  # the first n values, L2-normalized again
    encoding_format: str = "float"


def parse_json(body: bytes):
    """The body as JSON. orjson refuses lone surrogates ("\\ud800") that Python strings can hold:
    the stdlib parser then takes them, and ``texts`` names the text that has one. What neither
    takes is a 400: bad syntax, bad UTF-8, nesting deeper than the parser's stack (RecursionError),
    an integer of more digits than Python converts (ValueError)."""
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(body)
    except RecursionError:
        raise RequestError("syntax", "the request body is nested too deeply to be a request") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        raise RequestError("syntax", f"the request body is not valid JSON: {e}") from None


def openai_request(body, default_role: str | None, hidden_size: int, max_texts: int) -> EmbedRequest:
    """OpenAI's {"input", "model", "encoding_format", "dimensions", "user"}; ``input_type`` or
    ``prompt_name`` ("query" / "passage") choose the role's prompt."""
    body = _object(body)
    if "input" not in body:
        raise RequestError("validation", "'input' is required: a string or a list of strings", "input")
    if "model" in body and not isinstance(body["model"], str):
        raise RequestError("validation", "'model' must be a string", "model")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ENCODING_FORMATS:
        raise RequestError("validation", f"'encoding_format' must be 'float' or 'base64', not {encoding!r}",
                           "encoding_format")
    prompt_field = "input_type" if "input_type" in body else "prompt_name"
    return EmbedRequest("input", texts(body["input"], "input", max_texts),
                        _role(body.get(prompt_field), prompt_field, default_role),
                        dimensions=_dimensions(body.get("dimensions"), hidden_size), encoding_format=encoding)


def tei_request(body, default_role: str | None, hidden_size: int, max_texts: int) -> EmbedRequest:
    """TEI's /embed: {"inputs", "normalize", "truncate", "truncation_direction", "prompt_name", "dimensions"}."""
    body = _object(body)
    if "inputs" not in body:
        raise RequestError("validation", "'inputs' is required: a string or a list of strings", "inputs")
    direction = body.get("truncation_direction") or "right"
    if direction not in ("right", "Right"):
        raise RequestError("validation", f"'truncation_direction' {direction!r}: only 'right' is supported "
                           "(E5 was trained on the start of each text)", "truncation_direction")
    return EmbedRequest("inputs", texts(body["inputs"], "inputs", max_texts),
                        _role(body.get("prompt_name"), "prompt_name", default_role),
                        normalize=_bool(body, "normalize", True), truncate=_bool(body, "truncate", True),
                        dimensions=_dimensions(body.get("dimensions"), hidden_size))


@dataclass(frozen=True)
class TokenizeRequest:
    field: str
    texts: list[str]
    role: str | None
    add_special_tokens: bool = True


def tokenize_request(body, default_role: str | None, max_texts: int) -> TokenizeRequest:
    """TEI's /tokenize: {"inputs", "add_special_tokens", "prompt_name"}."""
    body = _object(body)
    if "inputs" not in body:
        raise RequestError("validation", "'inputs' is required: a string or a list of strings", "inputs")
    return TokenizeRequest("inputs", texts(body["inputs"], "inputs", max_texts),
                           _role(body.get("prompt_name"), "prompt_name", default_role),
                           _bool(body, "add_special_tokens", True))


def decode_request(body, max_texts: int) -> tuple[list[list[int]], bool]:
    """TEI's /decode: {"ids": [int] or [[int]], "skip_special_tokens"} -> (lists of ids, skip)."""
    body = _object(body)
    ids = body.get("ids")
    lists = [ids] if isinstance(ids, list) and all(_is_id(i) for i in ids) else ids
    if not isinstance(lists, list) or not lists or not all(
            isinstance(seq, list) and all(_is_id(i) for i in seq) for seq in lists):
        raise RequestError("validation", "'ids' must be a non-empty list of token ids (whole numbers), or a "
                           "list of such lists", "ids")
    if len(lists) > max_texts:
        raise RequestError("too_many_texts", f"'ids' has {len(lists)} lists; at most {max_texts} a request "
                           "(--max-client-batch-size)", "ids")
    return lists, _bool(body, "skip_special_tokens", True)


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def similarity_request(body, default_role: str | None, max_texts: int) -> tuple[EmbedRequest, int]:
    """TEI's /similarity: {"inputs": {"source_sentence", "sentences"}} -> the texts, source first."""
    body = _object(body)
    inputs = body.get("inputs")
    if not isinstance(inputs, dict) or not isinstance(inputs.get("source_sentence"), str):
        raise RequestError("validation", "'inputs' must be {\"source_sentence\": str, \"sentences\": [str]}", "inputs")
    sentences = texts(inputs.get("sentences"), "inputs.sentences", max_texts - 1)
    source = texts(inputs["source_sentence"], "inputs.source_sentence", 1)
    role = _role(body.get("prompt_name"), "prompt_name", default_role)
    return EmbedRequest("inputs", source + sentences, role, truncate=_bool(body, "truncate", True)), len(sentences)


def texts(value, field: str, max_texts: int) -> list[str]:
    """A string or a list of strings; token ids are refused (another tokenizer's ids would embed
    as the wrong words without a word said)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise RequestError("validation", f"'{field}' must be a string or a list of strings, not "
                           f"{_json_type(value)}", field)
    if not value:
        raise RequestError("empty", f"'{field}' is an empty list: send at least one text", field)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value) or all(isinstance(v, list) for v in value):
        raise RequestError("validation", f"'{field}' holds token ids: send text. Ids of another tokenizer would "
                           "give wrong embeddings (LangChain's OpenAIEmbeddings: check_embedding_ctx_length=False)",
                           field)
    if len(value) > max_texts:
        raise RequestError("too_many_texts", f"'{field}' has {len(value)} texts; at most {max_texts} a request "
                           "(--max-client-batch-size)", field)
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise RequestError("validation", f"'{field}[{i}]' must be a string, not {_json_type(v)}", f"{field}[{i}]")
    return value  # not checked for lone surrogates here: tokenizing names them (app.py maps the error)


def _object(body) -> dict:
    if not isinstance(body, dict):
        raise RequestError("validation", f"the request body must be a JSON object, not {_json_type(body)}")
    return body


def _role(name, field: str, default: str | None) -> str | None:
    if name is None:
        return default
    if name not in ROLES:
        raise RequestError("validation", f"'{field}' must be 'query' or 'passage', not {name!r}", field)
    return name


def _dimensions(value, hidden_size: int) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= hidden_size:
        raise RequestError("validation", f"'dimensions' must be a whole number from 1 to {hidden_size} "
                           f"(the model's size), not {value!r}", "dimensions")
    return value


def _bool(body: dict, field: str, default: bool) -> bool:
    value = body.get(field)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RequestError("validation", f"'{field}' must be true or false, not {value!r}", field)
    return value


def _json_type(value) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
