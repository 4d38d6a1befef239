"""A small real HTTP file server with Range support, standing in for a model host in update tests.

It serves the files of one folder on a loopback port from a background thread, answers HEAD with
ETag, Last-Modified and Content-Length, honours `Range: bytes=N-` (206) and `If-Range`, counts
the body bytes it sent, and can cut the next download after a given number of bytes (a dropped
connection). Run alone: python -m testkit.range_server FOLDER --port 9100
"""

from __future__ import annotations

import argparse
import hashlib
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

from bluegreen_common.processes import free_port


class RangeServer:
    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.bytes_served = 0
        self.ranges: list[str | None] = []  # the Range header of each GET, None when absent
        self.cut_after: int | None = None  # cut the next GET after this many body bytes
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> RangeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RangeServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self.bytes_served, self.ranges, self.cut_after = 0, [], None

    def _count(self, sent: int) -> None:
        with self._lock:
            self.bytes_served += sent

    def _take_cut(self) -> int | None:
        with self._lock:
            cut, self.cut_after = self.cut_after, None
            return cut

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:  # quiet
                pass

            def _file(self) -> Path | None:
                path = (server.folder / unquote(urlparse(self.path).path).lstrip("/")).resolve()
                inside = server.folder.resolve() in path.parents
                return path if inside and path.is_file() else None

            def _head(self, path: Path, status: int, length: int, first: int = 0) -> None:
                stat = path.stat()
                self.send_response(status)
                self.send_header("Content-Length", str(length))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", _etag(path))
                self.send_header("Last-Modified", formatdate(stat.st_mtime, usegmt=True))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {first}-{stat.st_size - 1}/{stat.st_size}")
                self.end_headers()

            def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
                path = self._file()
                if path is None:
                    self.send_error(404)
                    return
                self._head(path, 200, path.stat().st_size)

            def do_GET(self) -> None:  # noqa: N802
                path = self._file()
                if path is None:
                    self.send_error(404)
                    return
                size = path.stat().st_size
                wanted = self.headers.get("Range")
                server.ranges.append(wanted)
                first = 0
                if wanted and wanted.startswith("bytes=") and wanted.endswith("-") \
                        and self.headers.get("If-Range") in (None, _etag(path)):
                    first = int(wanted[6:-1])
                    if first >= size:
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                self._head(path, 206 if first else 200, size - first, first)
                cut = server._take_cut()
                with path.open("rb") as f:
                    f.seek(first)
                    body = f.read() if cut is None else f.read(cut)
                self.wfile.write(body)
                self.wfile.flush()
                server._count(len(body))
                if cut is not None:
                    self.close_connection = True

        return Handler


def _etag(path: Path) -> str:
    stat = path.stat()
    return '"' + hashlib.sha256(f"{stat.st_size}-{stat.st_mtime_ns}".encode()).hexdigest()[:16] + '"'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    server = RangeServer(args.folder, args.port)
    print(f"serving {args.folder} on {server.url}", flush=True)
    server._server.serve_forever()


if __name__ == "__main__":
    main()
