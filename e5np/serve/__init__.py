"""e5np as a service: OpenAI's embeddings API and TEI's routes over one ``E5Model``.

  batcher.py   the model thread and its bounded queue (dynamic batching)
  protocol.py  request bodies checked, error shapes of each dialect
  app.py       the Starlette routes
  metrics.py   Prometheus text
  settings.py  options from flags or E5NP_* variables
  server.py    bind, run, exit codes

Needs the ``serve`` extra (starlette, uvicorn, orjson). Uses only ``E5Model``'s public API.
"""

from .settings import PREFIX_CHOICES, ServeSettings, add_arguments, from_arguments

__all__ = ["PREFIX_CHOICES", "ServeSettings", "add_arguments", "from_arguments", "serve"]


def __getattr__(name: str):
    if name == "serve":  # imports starlette and uvicorn: only when a server is started
        from .server import serve
        return serve
    raise AttributeError(f"module 'e5np.serve' has no attribute {name!r}")
