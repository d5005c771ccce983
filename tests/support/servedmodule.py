"""A small stand-in for sglang/srt/models/qwen3_5.py, served by the bootstrap to real child
interpreters: the site that holds it, the patch ``run`` would hand over for it, and the
environment a child gets. No torch needed; the real classes are in realclasses.py."""

from __future__ import annotations

import hashlib
import marshal
import os
import subprocess
from pathlib import Path

from eagle3_patch.cache.usercache import identity
from eagle3_patch.inmemory.memo import bytecode_key
from eagle3_patch.inmemory.payload import ModulePatch, child_env, encode
from eagle3_patch.sharedrules import PAYLOAD_VAR

DEBIAN_PYTHON = Path("/usr/bin/python3")
MODULE = "sglang.srt.models.qwen3_5"
STOCK = '''\
class Qwen3_5ForCausalLM:
    def set_eagle3_layers_to_capture(self, layers):
        return "stock"
'''
PATCHED = '''\
class Qwen3_5ForCausalLM:
    def set_eagle3_layers_to_capture(self, layers):
        return "patched"

    def fail(self):
        raise RuntimeError("raised inside a patched method")
'''
REPORT = '''\
import importlib.util, inspect, json, sys, traceback
from sglang.srt.models.qwen3_5 import Qwen3_5ForCausalLM as C
try:
    C().fail()
    trace = ""
except Exception:
    trace = traceback.format_exc()
except AttributeError:
    trace = ""
print(json.dumps({
    "result": C().set_eagle3_layers_to_capture([1]),
    "eagle3_patch": importlib.util.find_spec("eagle3_patch") is not None,
    "libcst": importlib.util.find_spec("libcst") is not None,
    "sitecustomize": getattr(sys.modules.get("sitecustomize"), "__file__", None),
    "user_sitecustomize": getattr(sys.modules.get("sitecustomize"), "MARK", None),
    "sys_path": sys.path,
    "traceback": trace,
    "getsource": inspect.getsource(C),
}))
'''


def sglang_site(root: Path) -> Path:
    for package in ("sglang", "sglang/srt", "sglang/srt/models"):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("")
    (root / "sglang/srt/models/qwen3_5.py").write_text(STOCK)
    return root


def module_file(site: Path) -> Path:
    return site / "sglang/srt/models/qwen3_5.py"


def module_patch(site: Path) -> ModulePatch:
    module = module_file(site)
    return ModulePatch(MODULE, str(module.resolve()), hashlib.sha256(module.read_bytes()).hexdigest(),
                       PATCHED)


def handoff(site: Path, pythonpath: str | None = None, **extra: str) -> dict[str, str]:
    """The environment `run` would give COMMAND, for the stand-in module (a private cache folder)."""
    patch = module_patch(site)
    base = {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONHOME")}
    given = {"PYTHONPATH": pythonpath or str(site)}
    cache = {"XDG_CACHE_HOME": str(site.parent / "cache")}
    return {**base, **given, **cache, **child_env(encode([patch], "test", bytecode_key(identity())), given), **extra}


def plain(site: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONHOME", PAYLOAD_VAR)}
    return {**base, "PYTHONPATH": str(site)}


def run(python: str, code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def sealed_code(source: str, path: str) -> bytes:
    """A bytecode memo entry as the bootstrap writes it: the SHA-256 of the marshalled code, then it."""
    data = marshal.dumps(compile(source, path, "exec"))
    return hashlib.sha256(data).digest() + data
