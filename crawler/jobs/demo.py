"""Serving a directory as a small outlet on 127.0.0.1: the bundled sample for `demo`, and the
fixture outlets of the tests. HTML is gzip-encoded when the client accepts it, as real outlets do,
so the archive shows bodies stored exactly as they were sent."""

from __future__ import annotations

import gzip
import hashlib
import threading
from email.message import Message
from email.utils import parsedate_to_datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

SAMPLE_SITE = Path(__file__).parent / "sample_site"


class OutletRequestHandler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    validators = True  # ETag and Last-Modified, and 304 to conditional requests, as nginx does

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass

    def send_head(self):  # noqa: ANN201 (stdlib signature)
        path = Path(self.translate_path(self.path))
        if path.is_dir() and self.path.split("?")[0].endswith("/"):
            path = path / "index.html"
        accepts_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
        if not (path.suffix == ".html" and path.is_file() and accepts_gzip):
            return super().send_head()
        body = gzip.compress(path.read_bytes(), mtime=0)
        etag = f'"{hashlib.md5(body).hexdigest()}"'
        last_modified = self.date_time_string(int(path.stat().st_mtime))
        if self.validators and not_modified(self.headers, etag, last_modified):
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return None
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Vary", "Accept-Encoding")
        self.send_header("Content-Length", str(len(body)))
        if self.validators:
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", last_modified)
        self.end_headers()
        return BytesIO(body)


def not_modified(headers: Message, etag: str, last_modified: str) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        return etag in (t.strip() for t in if_none_match.split(",")) or if_none_match == "*"
    since = headers.get("If-Modified-Since")
    try:
        return since is not None and parsedate_to_datetime(since) >= parsedate_to_datetime(
            last_modified)
    except (TypeError, ValueError):
        return False


class OutletServer:
    """A threaded HTTP server for `root` on 127.0.0.1 (or another loopback address; port 0: a
    free one)."""

    def __init__(self, root: Path = SAMPLE_SITE, port: int = 0,
                 handler: type[SimpleHTTPRequestHandler] = OutletRequestHandler,
                 host: str = "127.0.0.1") -> None:
        self.httpd = ThreadingHTTPServer((host, port),
                                         partial(handler, directory=str(root)))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def __enter__(self) -> OutletServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
