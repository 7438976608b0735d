"""The HTTP routes: OpenAI's embeddings API and TEI's, over one ``Batcher``.

The router never touches tensors beyond shaping replies: texts are checked and tokenized here
(so a bad or over-long text is refused before it queues), embedded by the model thread, and
written back as JSON floats or base64 little-endian float32 (what the official ``openai`` client
asks for unless told otherwise).
"""

import asyncio
import base64
import hmac
import importlib.metadata

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import UnencodableTextError
from ..runtime import kernels_compiled
from .batcher import Batcher
from .embedding_cache import EmbeddingCache
from .endpoint import endpoint, error_response, json_response, read_json
from .metrics import ServerMetrics
from .openapi import describe
from .protocol import RequestError, openai_request, similarity_request, tei_request
from .settings import ServeSettings
from .tei_tokens import tei_decode, tei_embed_all, tei_tokenize
TOKENIZE_IN_THREAD = 16  # texts: above this, tokenizing off the event loop is worth a thread hop


def shorten(vectors: np.ndarray, dimensions: int | None, normalize: bool) -> np.ndarray:
    """The first ``dimensions`` values of each vector, L2-normalized again (TEI's behaviour; E5
    was not trained for shortened vectors, so expect lower quality than a Matryoshka model's)."""
    if dimensions is None or dimensions == vectors.shape[1]:
        return vectors
    head = vectors[:, :dimensions].astype(np.float64)
    if normalize:
        head /= np.maximum(np.linalg.norm(head, axis=1, keepdims=True), 1e-12)
    return head.astype(np.float32)


def base64_floats(vector: np.ndarray) -> str:
    return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")


class EmbeddingService:
    """What the routes share: the settings, the model thread, the metrics."""

    def __init__(self, batcher: Batcher, settings: ServeSettings, metrics: ServerMetrics, cache: EmbeddingCache):
        self.batcher, self.settings, self.metrics, self.cache = batcher, settings, metrics, cache

    def batcher_state(self) -> str:
        """What the model thread is doing, for a 503: loading, compiling or warming up, or failed."""
        if self.batcher.load_error:
            return "failed to load"
        if self.batcher.phase == "warming up":
            return ("is compiling its kernels for this CPU (first run only)" if kernels_compiled()
                    else "is warming up")
        return "is loading"

    @property
    def model(self):
        if not self.batcher.ready.is_set():
            raise RequestError("unavailable", f"the model {self.batcher_state()}; retry when /health answers 200",
                               retry_after=1)
        return self.batcher.model

    async def embed(self, request, headers: dict) -> tuple[np.ndarray, int]:
        """Texts -> float32 vectors (bit for bit ``model.encode`` of each text), and their tokens.
        Texts the cache holds are not queued; a request whose texts are all cached never waits."""
        tokens = await self.tokenize(request)
        cached = self.cache.get_many(tokens.ids, request.normalize)
        missing = [i for i, v in enumerate(cached) if v is None]
        vectors = np.empty((len(cached), self.model.hidden_size), np.float32)
        queue = inference = 0.0
        if missing:
            work = self.batcher.submit([tokens.ids[i] for i in missing], request.normalize)
            vectors[missing] = await asyncio.wrap_future(work.future)
            self.cache.put_many([tokens.ids[i] for i in missing], request.normalize, vectors[missing])
            queue, inference = work.started_at - work.queued_at, work.finished_at - work.started_at
        for i, v in enumerate(cached):
            if v is not None:
                vectors[i] = v
        count = sum(len(ids) for ids in tokens.ids)
        self.metrics.embedded(len(tokens.ids), count, queue, inference)
        headers.update({"x-queue-time": f"{queue * 1000:.0f}", "x-inference-time": f"{inference * 1000:.0f}",
                        "x-cache-hits": str(len(cached) - len(missing))})
        return shorten(vectors, request.dimensions, request.normalize), count

    async def tokenize(self, request):
        """The request's texts as token ids, with the role's prompt; a bad or (with truncate false)
        over-long text is refused here, naming it, before anything queues."""
        model = self.model
        tokens = await self.off_loop(request, lambda prompt: model.tokenize(request.texts, **prompt))
        if not request.truncate and tokens.truncated:
            i = tokens.truncated[0]
            raise RequestError("too_long", f"text {i} is longer than the model's {model.max_length} tokens "
                               "and truncate is false", f"{request.field}[{i}]")
        return tokens

    async def off_loop(self, request, tokenize):
        """``tokenize(prompt)`` with the request role's prompt (the model's own where it has them:
        bge, E5-instruct; else E5's prefixes), in a thread when the request is large; a text the
        tokenizer cannot take is refused naming it."""
        try:
            prompt = self.model.role_prompt(request.role) if request.role else {}
        except ValueError as e:
            raise RequestError("validation", str(e)) from None
        try:
            if len(request.texts) > TOKENIZE_IN_THREAD:
                return await run_in_threadpool(tokenize, prompt)
            return tokenize(prompt)
        except UnencodableTextError as e:
            name = f"{request.field}[{e.index}]"
            raise RequestError("validation", f"'{name}' is not valid Unicode: a lone surrogate {e.char!r} at "
                               f"character {e.position}", name) from None

    def authorized(self, request: Request) -> bool:
        key = self.settings.api_key
        if key is None:
            return True  # any Authorization header is fine: the openai client always sends one
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())


@endpoint("/v1/embeddings", "openai")
async def openai_embeddings(service: EmbeddingService, request: Request, headers: dict) -> Response:
    s, model = service.settings, service.model
    body = openai_request(await read_json(request, s), s.role, model.hidden_size,
                          s.max_client_batch_size)
    vectors, tokens = await service.embed(body, headers)
    encode = base64_floats if body.encoding_format == "base64" else (lambda v: v)
    data = [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)]
    return json_response({"object": "list", "data": data, "model": s.model_name,
                          "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}, headers=headers)


@endpoint("/embed", "tei")
async def tei_embed(service: EmbeddingService, request: Request, headers: dict) -> Response:
    s, model = service.settings, service.model
    body = tei_request(await read_json(request, s), s.role, model.hidden_size,
                       s.max_client_batch_size)
    vectors, _ = await service.embed(body, headers)
    return json_response(vectors, headers=headers)


@endpoint("/similarity", "tei")
async def tei_similarity(service: EmbeddingService, request: Request, headers: dict) -> Response:
    s = service.settings
    service.model  # noqa: B018 - 503 before the body is read, while the model loads
    body, _ = similarity_request(await read_json(request, s), s.role, s.max_client_batch_size)
    vectors, _ = await service.embed(body, headers)
    scores = vectors[1:].astype(np.float64) @ vectors[0].astype(np.float64)
    return json_response(scores.tolist(), headers=headers)


@endpoint("/health", "tei", protected=False)
async def health(service: EmbeddingService, request: Request, headers: dict) -> Response:
    service.model  # noqa: B018 - raises 503 until loaded and warmed up
    return Response(status_code=200)


@endpoint("/info", "tei")
async def info(service: EmbeddingService, request: Request, headers: dict) -> Response:
    s, batcher = service.settings, service.batcher
    model = batcher.model
    described = {} if model is None else {
        "dimension": model.hidden_size, "max_input_length": model.max_length, "precision": model.precision,
        "precision_reason": model.precision_reason, "num_threads": model.num_threads}
    return json_response({
        "model_id": s.model_name, "model_path": s.model, "ready": batcher.ready.is_set(), **described,
        "default_prefix": s.default_prefix, "max_client_batch_size": s.max_client_batch_size,
        "max_batch_tokens": s.max_batch_tokens, "max_queue": s.max_queue, "payload_limit": s.payload_limit,
        "cache_mb": s.cache_mb, "cache_entries": len(service.cache),
        "version": importlib.metadata.version("e5np")})


@endpoint("/openapi.json", "tei", protected=False)
async def openapi(service: EmbeddingService, request: Request, headers: dict) -> Response:
    return json_response(describe(importlib.metadata.version("e5np")))


@endpoint("/metrics", "tei", protected=False)
async def metrics(service: EmbeddingService, request: Request, headers: dict) -> Response:
    return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")


async def not_found(request: Request, exc: HTTPException) -> Response:
    dialect = "openai" if request.url.path.startswith("/v1") else "tei"
    kind = {404: "not_found", 405: "method"}.get(exc.status_code, "validation")
    return error_response(RequestError(kind, f"{request.method} {request.url.path}: {exc.detail}"), dialect)


def create_app(batcher: Batcher, settings: ServeSettings) -> Starlette:
    cache = EmbeddingCache(int(settings.cache_mb * 2**20))
    metrics_ = ServerMetrics(lambda: batcher.queued_texts, cache)
    batcher.observe = metrics_.batch
    routes = [Route("/v1/embeddings", openai_embeddings, methods=["POST"]),
              Route("/embeddings", openai_embeddings, methods=["POST"]),
              Route("/embed", tei_embed, methods=["POST"]),
              Route("/similarity", tei_similarity, methods=["POST"]),
              Route("/tokenize", tei_tokenize, methods=["POST"]),
              Route("/decode", tei_decode, methods=["POST"]),
              Route("/embed_all", tei_embed_all, methods=["POST"]),
              Route("/health", health, methods=["GET"]),
              Route("/info", info, methods=["GET"]),
              Route("/metrics", metrics, methods=["GET"]),
              Route("/openapi.json", openapi, methods=["GET"])]
    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found})
    app.state.service = EmbeddingService(batcher, settings, metrics_, cache)
    return app
