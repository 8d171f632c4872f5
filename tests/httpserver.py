"""A loopback HTTP server for download tests: serves files with Range support and can cut connections."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path


class ArchiveServer:
    """Serve `files` (name → path) on 127.0.0.1. `cut_after[name] = n` sends only n bytes of the next
    response for that file (declaring the full length), then closes: a cut connection.
    `fail_next[name] = [503, ...]` answers the next requests for that file with those HTTP errors;
    `stall[name] = s` waits s seconds before answering the next one."""

    def __init__(self, files: dict[str, Path], honour_range: bool = True):
        self.files = {k: Path(v) for k, v in files.items()}
        self.cut_after: dict[str, int] = {}
        self.fail_next: dict[str, list[int]] = {}  # name -> HTTP error codes to answer first, in order
        self.honour_range = honour_range
        self.stall: dict[str, float] = {}  # name -> seconds to wait before answering the next request
        self.no_length: set[str] = set()  # served without Content-Length: the body ends with the connection
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                rng = self.headers.get("Range")
                server.requests.append((name, rng))
                if name in server.stall:
                    time.sleep(server.stall.pop(name))
                if name not in server.files:
                    self.send_error(404)
                    return
                if server.fail_next.get(name):
                    self.send_error(server.fail_next[name].pop(0))
                    return
                data = server.files[name].read_bytes()
                start = 0
                if rng and server.honour_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                if name not in server.no_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = server.cut_after.pop(name, None)
                self.wfile.write(body if cut is None else body[:cut])
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
