"""``e5np serve``: bind, load the model in its thread, serve until SIGTERM or Ctrl-C (or Ctrl-Break on Windows).

Exit codes: 0 after a signal (every accepted request answered first), 2 with one line when the
port cannot be bound or the model cannot load.
"""

import contextlib
import logging
import signal
import socket
import sys
import threading

import uvicorn

from ..errors import E5npError
from ..runtime import listen_exclusively, stop_signals
from .app import create_app
from .batcher import Batcher
from .header_timeout import with_header_timeout
from .settings import ServeSettings

log = logging.getLogger("e5np.serve")


class Server(uvicorn.Server):
    """uvicorn's Server without its signal re-raise: uvicorn re-raises SIGTERM after a graceful
    shutdown, which would end the process with -15 instead of 0."""

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handlers = {sig: signal.signal(sig, self.handle_exit) for sig in stop_signals()}  # + SIGBREAK on Windows
        try:
            yield
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto named: asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and without
    # it a keep-alive reply (headers and body written apart) waited ~45 ms for a delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listen_exclusively(sock)  # SO_REUSEADDR, or Windows' SO_EXCLUSIVEADDRUSE: a taken port is refused
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def load_model(settings: ServeSettings):
    from ..engine import E5Model

    return E5Model.from_pretrained(settings.model, precision=settings.precision, max_length=settings.max_length,
                                   num_threads=settings.num_threads, max_batch_tokens=settings.max_batch_tokens)


def serve(settings: ServeSettings, load=None) -> int:
    sock = bind(settings.host, settings.port)
    batcher = Batcher(load or (lambda: load_model(settings)), settings.max_batch_tokens, settings.max_queue)
    app = create_app(batcher, settings)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=settings.graceful_timeout,
                            http=with_header_timeout(settings.header_timeout))
    server = Server(config)

    def stop_if_load_fails():
        batcher.stopped.wait()
        if batcher.load_error is not None:
            server.should_exit = True

    threading.Thread(target=stop_if_load_fails, name="e5np-load-watch", daemon=True).start()
    batcher.start()
    host, port = sock.getsockname()[:2]
    print(f"e5np: serving {settings.model_name} on http://{host}:{port} (loading; /health answers 200 when ready)",
          file=sys.stderr, flush=True)
    server.run(sockets=[sock])
    batcher.close()
    if batcher.load_error is not None:
        raise E5npError(f"the model could not load: {batcher.load_error}")
    print("e5np: stopped; every accepted request was answered", file=sys.stderr, flush=True)
    return 0
