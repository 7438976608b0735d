"""TEI's token routes: ``/tokenize`` and ``/decode`` (what a client uses to count or cut tokens
before it sends them) and ``/embed_all`` (every token's last hidden state, for late interaction
and span use). Shapes as TEI's router has them:

- ``/tokenize`` {"inputs": str | [str], "add_special_tokens": true, "prompt_name": null} ->
  [[{"id", "text", "special", "start", "stop"}]] per input, uncut; start/stop are byte offsets
  into the (prompted) input's UTF-8, null for special tokens.
- ``/decode`` {"ids": [int] | [[int]], "skip_special_tokens": true} -> [str].
- ``/embed_all`` {"inputs", "truncate", "truncation_direction", "prompt_name"} -> [[[float]]]:
  per input, per token ([CLS] and [SEP] included), hidden-size floats; at most
  ``--max-batch-tokens`` tokens a request (the reply is tokens x hidden floats).
"""

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from .endpoint import endpoint, json_response, read_json
from .protocol import RequestError, decode_request, tei_request, tokenize_request


@endpoint("/tokenize", "tei")
async def tei_tokenize(service, request: Request, headers: dict) -> Response:
    s, model = service.settings, service.model
    body = tokenize_request(await read_json(request, s), s.role, s.max_client_batch_size)
    tokens = await service.off_loop(
        body, lambda prompt: model.tokens(body.texts, add_special_tokens=body.add_special_tokens, **prompt))
    return json_response(tokens)


@endpoint("/decode", "tei")
async def tei_decode(service, request: Request, headers: dict) -> Response:
    s, model = service.settings, service.model
    ids, skip_special = decode_request(await read_json(request, s), s.max_client_batch_size)
    try:
        return json_response(model.tokenizer.decode(ids, skip_special))
    except ValueError as e:
        raise RequestError("validation", str(e), "ids") from None


@endpoint("/embed_all", "tei")
async def tei_embed_all(service, request: Request, headers: dict) -> Response:
    s, model = service.settings, service.model
    body = tei_request(await read_json(request, s), s.role, model.hidden_size, s.max_client_batch_size)
    tokens = await service.tokenize(body)
    total = sum(len(ids) for ids in tokens.ids)
    if total > s.max_batch_tokens:
        raise RequestError("too_long", f"'inputs' hold {total} tokens; /embed_all answers at most {s.max_batch_tokens} "
                           "a request (--max-batch-tokens): every token's vector is in the reply", "inputs")
    return json_response(await run_in_threadpool(model.token_states, tokens.ids))
