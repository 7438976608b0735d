"""e5np as a service: OpenAI's embeddings API and TEI's routes over one ``E5Model``.

  batcher.py   the model thread and its bounded queue (dynamic batching)
  protocol.py  request bodies checked, error shapes of each dialect
  app.py       the Starlette routes
  metrics.py   Prometheus text
  settings.py  options from flags or E5NP_* variables
  server.py    bind, run, exit codes

Needs the ``serve`` extra (starlette, uvicorn, orjson). Uses only ``E5Model``'s public API.
"""

from .settings import ServeSettings

__all__ = ["ServeSettings"]  # the rest imports starlette: e5np.serve.app, .server, .batcher
