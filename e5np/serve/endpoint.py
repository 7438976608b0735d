"""What every route shares: the wrapper that checks the API key, shapes errors in the route's
dialect (OpenAI's or TEI's), times and counts the request; reading a bounded JSON body; JSON replies."""

import asyncio
import json
import logging
import time

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .protocol import RequestError, orjson, parse_json
from .settings import ServeSettings

log = logging.getLogger("e5np.serve")


def json_response(content, status: int = 200, headers: dict | None = None) -> Response:
    if orjson is not None:
        body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    else:
        body = json.dumps(content, default=lambda a: a.tolist()).encode()
    return Response(body, status, headers, media_type="application/json")


def endpoint(route: str, dialect: str, protected: bool = True):
    """Wraps a handler: API key, body limit, errors in the dialect's shape, timing, metrics."""
    def wrap(handler):
        async def run(request: Request) -> Response:
            service = request.app.state.service  # the EmbeddingService (app.py)
            started, headers = time.perf_counter(), {}
            try:
                if protected and not service.authorized(request):
                    raise RequestError("unauthorized", "missing or wrong API key: send 'Authorization: Bearer KEY'")
                response = await handler(service, request, headers)
            except RequestError as e:
                response = error_response(e, dialect)
            except Exception as e:  # noqa: BLE001 - never a traceback in a response
                log.exception("%s failed", route)
                response = error_response(RequestError("backend", f"internal error: {type(e).__name__}"), dialect)
            seconds = time.perf_counter() - started
            response.headers["x-total-time"] = f"{seconds * 1000:.0f}"
            response.headers.update(headers)
            service.metrics.request(route, response.status_code, seconds)
            return response
        return run
    return wrap


def error_response(error: RequestError, dialect: str) -> Response:
    status, body = error.openai() if dialect == "openai" else error.tei()
    headers = {"retry-after": str(error.retry_after)} if error.retry_after else None
    return json_response(body, status, headers)


async def read_json(request: Request, settings: ServeSettings):
    """The body, parsed: at most ``--payload-limit`` bytes, all of it within ``--body-timeout``
    seconds (a client that trickles its body holds a connection and a task, not the server)."""
    limit = settings.payload_limit
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestError("payload", f"the body has {declared} bytes; at most {limit} (--payload-limit)")

    async def receive() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError("payload", f"the body is over {limit} bytes (--payload-limit)")
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        body = await asyncio.wait_for(receive(), settings.body_timeout)
    except asyncio.TimeoutError:
        raise RequestError("timeout", f"the body did not arrive within {settings.body_timeout:g} s "
                                      "(--body-timeout)") from None
    except ClientDisconnect:
        raise RequestError("disconnected", "the client closed the connection before its body ended") from None
    return parse_json(body)


