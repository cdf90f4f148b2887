"""HTTP plumbing for the LINE fake: a threading HTTP/1.1 server with keep-alive.

One thread per connection; the SDK's urllib3 pool keeps connections open, so
a campaign reuses a handful of them. Every answer is JSON with
``Content-Length`` and ``X-Line-Request-Id``. Stopping the server also shuts
the idle keep-alive sockets, so no handler thread outlives the fake.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024  # the fake refuses bodies over 2 MB (413)


@dataclass(slots=True)
class Response:
    """An answer to write: status, JSON body, extra headers.

    ``drop`` closes the connection without answering (a lost response).
    """

    status: int
    body: dict[str, Any] | None
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


class RequestAnswerer(Protocol):
    def handle(self, method: str, raw_path: str, headers: Any, raw_body: bytes) -> Response: ...


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LineFake/1.0"
    disable_nagle_algorithm = True
    timeout = 60  # close idle keep-alive connections after a minute
    server: Server

    def _serve(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._write(Response(411, {"message": "Length Required"}))
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._write(Response(413, {"message": "Request Entity Too Large"}))
            self.close_connection = True
            return
        raw_body = self.rfile.read(length) if length else b""
        response = self.server.answerer.handle(self.command, self.path, self.headers, raw_body)
        if response.drop:
            self.close_connection = True
            return
        self._write(response)

    def _write(self, response: Response) -> None:
        payload = b""
        if response.body is not None:
            payload = json.dumps(response.body, ensure_ascii=False).encode("utf-8")
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Line-Request-Id", response.request_id)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("LINE fake %s: " + format, self.address_string(), *args)


class Server(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` that tracks its connections so it can close them."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], answerer: RequestAnswerer) -> None:
        self.answerer = answerer
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Unblock handler threads waiting on idle keep-alive connections."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        logger.exception("LINE fake: error on connection from %s", client_address)
