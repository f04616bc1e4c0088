"""A local HTTP server on 127.0.0.1 (port 0) serving benign images and misbehaving on purpose.

Routes (NAME is a key of the images it was given):
  /img/NAME             the image
  /redirect/NAME        302 to /img/NAME (relative Location)
  /moved/NAME           301 to the absolute URL of /img/NAME
  /loop                 302 to itself, forever
  /to/NAME              302 to ``server.redirects[NAME]``, any URL a test sets
  /missing              404
  /error                500
  /down                 503, always
  /busy                 429 with Retry-After: 0, always
  /flaky/NAME           503 on every odd request to this path, the image on every even one
  /slow                 the image after SLOW_SECONDS
  /big                  200 announcing BIG_BYTES in Content-Length
  /big-stream           200 streaming BIG_BYTES with no Content-Length
  /page                 an HTML page
  /optout/NAME          the image with ``X-Robots-Tag: noai``
  /optout-ua/NAME       the image with ``X-Robots-Tag: safeset: noimageai``
  /otherbot/NAME        the image with ``X-Robots-Tag: otherbot: noai`` (not addressed to us)
  /dribble              a 200 whose headers arrive one byte every DRIBBLE_SECONDS (for minutes)
  /odd-retry            503 with ``Retry-After: ²`` (a digit to str.isdigit, not to int)
  /odd-length/NAME      the image with ``Content-Length: ²``
  /tdm/NAME             the image with TDMRep's ``tdm-reservation: 1``
  /tdm-open/NAME        the image with ``tdm-reservation: 0`` (nothing reserved)
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_SECONDS = 5.0
DRIBBLE_SECONDS = 0.1
BIG_BYTES = 3 * 1024 * 1024


class ImageServer(ThreadingHTTPServer):
    daemon_threads = True
    # Many downloader threads connect at once; the default backlog of 5 would drop SYNs and
    # turn a busy moment into a connect timeout.
    request_queue_size = 128

    def __init__(self, images: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.images = images
        self.redirects: dict[str, str] = {}
        self.hits: Counter[str] = Counter()
        self.user_agents: set[str] = set()
        self.lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def handle_error(self, request, client_address) -> None:
        # A client that timed out and hung up is expected here, not worth a traceback.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: ImageServer

    def log_message(self, format: str, *args) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.hits[self.path] += 1
            hits = self.server.hits[self.path]
            self.server.user_agents.add(self.headers.get("User-Agent", ""))
        route, _, name = self.path.lstrip("/").partition("/")
        image = self.server.images.get(name)
        if route == "img" and image is not None:
            self._send(200, image)
        elif route == "redirect" and image is not None:
            self._send(302, b"", {"Location": f"/img/{name}"})
        elif route == "moved" and image is not None:
            self._send(301, b"", {"Location": self.server.url(f"/img/{name}")})
        elif route == "to" and name in self.server.redirects:
            self._send(302, b"", {"Location": self.server.redirects[name]})
        elif route == "loop":
            self._send(302, b"", {"Location": "/loop"})
        elif route == "error":
            self._send(500, b"oops")
        elif route == "down":
            self._send(503, b"down")
        elif route == "busy":
            self._send(429, b"slow down", {"Retry-After": "0"})
        elif route == "flaky" and image is not None:
            if hits % 2:
                self._send(503, b"try again")
            else:
                self._send(200, image)
        elif route == "slow":
            time.sleep(SLOW_SECONDS)
            self._send(200, next(iter(self.server.images.values())))
        elif route == "big":
            self._send(200, b"\0" * BIG_BYTES)
        elif route == "big-stream":
            self._stream(BIG_BYTES)
        elif route == "page":
            self._send(200, b"<html><body>not an image</body></html>", content_type="text/html")
        elif route == "optout" and image is not None:
            self._send(200, image, {"X-Robots-Tag": "noai"})
        elif route == "optout-ua" and image is not None:
            self._send(200, image, {"X-Robots-Tag": "safeset: noimageai"})
        elif route == "otherbot" and image is not None:
            self._send(200, image, {"X-Robots-Tag": "otherbot: noai"})
        elif route == "dribble":
            self._dribble(b"HTTP/1.0 200 OK\r\nX-Padding: " + b"a" * 3000 + b"\r\n\r\n")
        elif route == "odd-retry":
            self._send(503, b"later", {"Retry-After": "\u00b2"})
        elif route == "odd-length" and image is not None:
            self.send_response(200)
            self.send_header("Content-Length", "\u00b2")
            self.end_headers()
            self.wfile.write(image)
        elif route == "tdm" and image is not None:
            self._send(200, image, {"tdm-reservation": "1", "tdm-policy": "https://example.org/p"})
        elif route == "tdm-open" and image is not None:
            self._send(200, image, {"TDM-Reservation": "0"})
        else:
            self._send(404, b"not found")

    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "image/jpeg",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _dribble(self, response: bytes) -> None:
        for n in range(len(response)):
            self.wfile.write(response[n : n + 1])
            self.wfile.flush()
            time.sleep(DRIBBLE_SECONDS)

    def _stream(self, size: int) -> None:
        # HTTP/1.0 without Content-Length: the body runs until the connection closes.
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.end_headers()
        chunk = b"\xff" * 65536
        for _ in range(size // len(chunk)):
            self.wfile.write(chunk)


@contextmanager
def serving(images: dict[str, bytes]) -> Iterator[ImageServer]:
    server = ImageServer(images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/img/x"
