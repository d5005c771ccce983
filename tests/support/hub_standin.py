"""A loopback stand-in for the Hugging Face Hub: the endpoints huggingface_hub calls for
``hf_hub_download``, ``snapshot_download`` and ``HfApi.parse_safetensors_file_metadata``.

Serves one repo from a folder (``HF_ENDPOINT=http://127.0.0.1:<port>``) with the
Hub's headers (X-Repo-Commit, ETag, X-Error-Code), honours Range requests, and
records every request so a test can prove what was (not) downloaded.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from support.loopback import LoopbackServer

COMMIT = "feedfacefeedfacefeedfacefeedfacefeedface"


@dataclass
class Request:
    method: str
    path: str
    range: str | None


@dataclass
class StandInHub:
    repo_id: str
    root: Path  # the repo's files, e.g. root/compressed/config.json
    requests: list[Request] = field(default_factory=list)
    # A hostile Hub: given the handler, answers the request itself (writing to its socket) and
    # returns True, or returns False to let the stand-in answer as the Hub does.
    hostile: Callable[[Any], bool] | None = None

    def __enter__(self) -> StandInHub:
        hub = self

        class Handler(_Handler):
            standin = hub

        self._server = LoopbackServer(Handler).__enter__()
        self.endpoint = self._server.url
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.__exit__(*exc)

    def full_downloads(self, suffix: str) -> list[Request]:
        """GETs of a file ending in ``suffix`` that asked for all of it (no Range)."""
        return [r for r in self.requests if r.method == "GET" and r.path.endswith(suffix) and r.range is None]

    def files(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())


_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<under>.*))?$")


class _Handler(BaseHTTPRequestHandler):
    standin: StandInHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        path = unquote(urlparse(self.path).path)
        self.standin.requests.append(Request(self.command, path, self.headers.get("Range")))
        if self.standin.hostile is not None and self.standin.hostile(self):
            self.close_connection = True
            return
        info, tree, resolve = _INFO.match(path), _TREE.match(path), _RESOLVE.match(path)
        matched = info or tree or resolve
        repo = matched.group("repo") if matched else None
        if repo != self.standin.repo_id:
            return self._error(404 if repo is None else 401, "RepoNotFound", "Repository not found")
        if tree:
            under = (tree.group("under") or "").strip("/")
            entries = [self._entry(name) for name in self.standin.files() if name.startswith(under)]
            return self._send(200, json.dumps(entries).encode(), body, {"Content-Type": "application/json"})
        if info:
            siblings = [{"rfilename": name} for name in self.standin.files()]
            return self._send(200, json.dumps({"id": repo, "sha": COMMIT, "siblings": siblings}).encode(),
                              body, {"Content-Type": "application/json"})
        target = self.standin.root / resolve.group("file")
        if not target.is_file():
            return self._error(404, "EntryNotFound", "Entry not found")
        data = target.read_bytes()
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                   "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        wanted = self.headers.get("Range")
        if wanted and body:
            start, _, end = wanted.removeprefix("bytes=").partition("-")
            last = min(int(end) if end else len(data) - 1, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{last}/{len(data)}"
            return self._send(206, data[int(start): last + 1], body, headers)
        return self._send(200, data, body, headers)

    def _entry(self, name: str) -> dict:
        data = (self.standin.root / name).read_bytes()
        entry = {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
        if name.endswith(".safetensors"):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, json.dumps({"error": message}).encode(), True,
                   {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"})

    def _send(self, status: int, data: bytes, body: bool, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)
