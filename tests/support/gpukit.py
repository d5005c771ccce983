"""The GPU kit's modules (benchmarks/gpu, not a package) loaded for tests, and a stand-in for an
SGLang server: what the driver waits for (its ready line and /health) and reads (/server_info)."""

from __future__ import annotations

import importlib
import sys

from .paths import REPO

KIT = REPO / "benchmarks" / "gpu"


def load(name: str):
    """``benchmarks/gpu/<name>.py``, imported as the kit's own modules import each other (by the
    plain name, once), so a class is the same class whichever module hands it over."""
    sys.path.insert(0, str(KIT))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(KIT))


# argv: python -c STANDIN --port N [anything else, which only makes the argv differ]
STANDIN = r"""
import http.server, json, sys
port = int(sys.argv[sys.argv.index("--port") + 1])

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        known = {"/health": b"ok", "/server_info": json.dumps({"disable_cuda_graph": False,
                                                                "version": "stand-in"}).encode()}
        self.send_response(200 if self.path in known else 404)
        self.end_headers()
        self.wfile.write(known.get(self.path, b""))

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", port), Handler)
print("The server is fired up and ready to roll!", flush=True)
server.serve_forever()
"""


def standin_argv(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-c", STANDIN, "--port", str(port), *extra]
