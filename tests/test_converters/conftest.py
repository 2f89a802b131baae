"""Fixtures of the converter tests: a loopback HTTP server that serves checkpoints."""
import os
import os.path as osp
import shutil
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterator, Optional, Union
from urllib.parse import urlsplit

import pytest


class CheckpointServer:
    """Files served over HTTP on 127.0.0.1 (stdlib ``http.server`` in a thread, port 0).

    Register a path with :meth:`add` (the bytes or a file, a ``Content-Type``, and optionally a
    ``Content-Length`` that lies, to cut a transfer short); any other path answers 404.
    :attr:`requests` counts the GET requests per path.
    """

    def __init__(self) -> None:
        self.routes: Dict[str, dict] = {}
        self.requests: Counter = Counter()
        owner = self

        class Handler(BaseHTTPRequestHandler):

            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                path = urlsplit(self.path).path
                owner.requests[path] += 1
                route = owner.routes.get(path)
                if route is None:
                    self.send_error(404, 'Not Found')
                    return
                size = (len(route['data']) if route['file'] is None
                        else osp.getsize(route['file']))
                self.send_response(200)
                self.send_header('Content-Type', route['content_type'])
                self.send_header('Content-Length', str(route['length'] or size))
                self.send_header('Connection', 'close')
                self.end_headers()
                if route['file'] is None:
                    self.wfile.write(route['data'])
                else:
                    with open(route['file'], 'rb') as f:
                        shutil.copyfileobj(f, self.wfile, 1 << 20)
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add(self, path: str, data: Optional[bytes] = None,
            file: Optional[Union[str, 'os.PathLike[str]']] = None,
            content_type: str = 'application/octet-stream',
            length: Optional[int] = None) -> str:
        """Serve ``data`` (or ``file``) at ``path``; returns its URL."""
        assert (data is None) != (file is None), 'give data or file'
        self.routes[path] = dict(data=data, file=None if file is None else os.fspath(file),
                                 content_type=content_type, length=length)
        return self.url(path)

    def url(self, path: str) -> str:
        """``http://127.0.0.1:<port><path>``."""
        return f'http://127.0.0.1:{self.httpd.server_address[1]}{path}'

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def checkpoint_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[CheckpointServer]:
    """A :class:`CheckpointServer`, reached without any proxy of the environment."""
    for name in ('no_proxy', 'NO_PROXY'):
        monkeypatch.setenv(name, '127.0.0.1,localhost')
    server = CheckpointServer()
    try:
        yield server
    finally:
        server.close()
