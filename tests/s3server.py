"""A real S3-compatible server on loopback for tests: moto's threaded server, spoken to over HTTP."""

from __future__ import annotations

import logging
import urllib.request

from moto.server import ThreadedMotoServer

__all__ = ["reset_s3_server", "start_s3_server"]


def start_s3_server() -> tuple[ThreadedMotoServer, str]:
    """Start moto on 127.0.0.1 at a free port the OS picks; return the server and its ``http://`` URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access-log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def reset_s3_server(url: str) -> None:
    """Forget every bucket and object the server holds (moto's reset API)."""
    request = urllib.request.Request(f"{url.rstrip('/')}/moto-api/reset", data=b"", method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    with opener.open(request, timeout=10) as response:
        response.read()
