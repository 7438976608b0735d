"""The OpenAPI 3.1 description served at ``/openapi.json``: every route, what its body takes and
what it answers. Written by hand from ``protocol.py`` (the code that checks bodies); the tests post
each route's example and check that the routes and this description list the same paths."""

TEXTS = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
         "description": "a text or a list of texts (token ids are refused: send text)"}
ROLE = {"type": ["string", "null"], "enum": ["query", "passage", None],
        "description": "the role's prompt: E5's 'query: ' / 'passage: ', or the model's own prompts"}
FLOATS = {"type": "array", "items": {"type": "number"}}
ERROR_TEI = {"type": "object", "properties": {"error": {"type": "string"}, "error_type": {"type": "string"}}}
ERROR_OPENAI = {"type": "object", "properties": {"error": {"type": "object", "properties": {
    "message": {"type": "string"}, "type": {"type": "string"}, "param": {"type": ["string", "null"]},
    "code": {"type": "string"}}}}}


def _post(summary, properties, required, example, reply, error=ERROR_TEI):
    errors = {status: {"description": why, "content": {"application/json": {"schema": error}}} for status, why in (
        ("400", "not JSON, or an empty list"), ("413", "over a limit (payload, texts, tokens)"),
        ("422", "a field of the wrong type or value (OpenAI routes: 400)"), ("429", "the queue is full"),
        ("503", "the model is loading or compiling"))}
    return {"post": {
        "summary": summary,
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"type": "object", "properties": properties, "required": required}, "example": example}}},
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reply}}}, **errors}}}


def _get(summary, reply):
    return {"get": {"summary": summary, "responses": {"200": {"description": "OK", "content": reply}}}}


def _openai_embeddings():
    return _post(
        "OpenAI's embeddings API",
        {"input": TEXTS, "model": {"type": "string"}, "encoding_format": {"enum": ["float", "base64"]},
         "dimensions": {"type": "integer", "minimum": 1}, "input_type": ROLE, "prompt_name": ROLE,
         "user": {"type": "string"}},
        ["input"], {"input": ["query: how much protein should a female eat"]},
        {"type": "object", "properties": {"object": {"const": "list"}, "model": {"type": "string"},
                                          "data": {"type": "array", "items": {"type": "object"}},
                                          "usage": {"type": "object"}}}, ERROR_OPENAI)


def describe(version: str) -> dict:
    embed_options = {"inputs": TEXTS, "truncate": {"type": "boolean", "default": True},
                     "truncation_direction": {"enum": ["right", "Right"]}, "prompt_name": ROLE}
    paths = {
        "/v1/embeddings": _openai_embeddings(),
        "/embeddings": _openai_embeddings(),
        "/embed": _post("TEI: embed texts", {**embed_options, "normalize": {"type": "boolean", "default": True},
                                             "dimensions": {"type": "integer", "minimum": 1}},
                        ["inputs"], {"inputs": ["query: what is a cold start"]}, {"type": "array", "items": FLOATS}),
        "/similarity": _post("TEI: cosine of a source sentence to each sentence",
                             {"inputs": {"type": "object", "properties": {
                                 "source_sentence": {"type": "string"},
                                 "sentences": {"type": "array", "items": {"type": "string"}}},
                                 "required": ["source_sentence", "sentences"]},
                              "truncate": {"type": "boolean"}, "prompt_name": ROLE},
                             ["inputs"], {"inputs": {"source_sentence": "a", "sentences": ["b", "c"]}}, FLOATS),
        "/tokenize": _post("TEI: every token of each input, uncut, with byte offsets",
                           {"inputs": TEXTS, "add_special_tokens": {"type": "boolean", "default": True},
                            "prompt_name": ROLE},
                           ["inputs"], {"inputs": "query: héllo"},
                           {"type": "array", "items": {"type": "array", "items": {"type": "object", "properties": {
                               "id": {"type": "integer"}, "text": {"type": "string"}, "special": {"type": "boolean"},
                               "start": {"type": ["integer", "null"]}, "stop": {"type": ["integer", "null"]}}}}}),
        "/decode": _post("TEI: token ids back to text",
                         {"ids": {"oneOf": [{"type": "array", "items": {"type": "integer"}},
                                            {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}]},
                          "skip_special_tokens": {"type": "boolean", "default": True}},
                         ["ids"], {"ids": [[101, 7592, 102]]}, {"type": "array", "items": {"type": "string"}}),
        "/embed_all": _post("TEI: every token's last hidden state ([CLS] and [SEP] included)", embed_options,
                            ["inputs"], {"inputs": ["passage: a short one"]},
                            {"type": "array", "items": {"type": "array", "items": FLOATS}}),
        "/health": _get("200 once the model answers; 503 (with the reason) while it loads", {}),
        "/info": _get("the model, its limits and precision path", {"application/json": {"schema": {"type": "object"}}}),
        "/metrics": _get("Prometheus metrics (TEI's names)", {"text/plain": {"schema": {"type": "string"}}}),
        "/openapi.json": _get("this description", {"application/json": {"schema": {"type": "object"}}}),
    }
    return {"openapi": "3.1.0", "info": {"title": "e5np serve", "version": version,
                                         "description": "E5 embeddings on the CPU: OpenAI's embeddings API and TEI's routes"},
            "paths": paths}
