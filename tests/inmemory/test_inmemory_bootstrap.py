"""The bootstrap sitecustomize in real child interpreters: chaining, verification, bytecode, tracebacks.

The children are real Python processes started with the environment `run`
hands over. Most run Debian's /usr/bin/python3, which has neither eagle3-patch
nor libcst and has its own sitecustomize in the stdlib folder. The module
served is a small stand-in at sglang/srt/models/qwen3_5.py, so these tests
need no torch; test_run_command.py and test_inmemory_real.py use SGLang's own.
"""

from __future__ import annotations

import base64
import compileall
import gzip
import hashlib
import json
import marshal
import os
import py_compile
import random
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from eagle3_patch.errors import EXIT_STALE
from eagle3_patch.inmemory.payload import BOOTSTRAP_DIR, ModulePatch, child_env, encode
from eagle3_patch.sharedrules import MAX_VARIABLE_BYTES, PAYLOAD_VAR

from support.marks import first_fast
from support.servedmodule import (
    DEBIAN_PYTHON, MODULE, PATCHED, REPORT, STOCK, handoff, module_file, module_patch, plain, run, sealed_code,
    sglang_site,
)



@pytest.fixture(scope="module")
def bare_python() -> str:
    assert DEBIAN_PYTHON.exists(), "these tests run children on Debian's /usr/bin/python3"
    return str(DEBIAN_PYTHON)


@pytest.fixture
def stand_in(tmp_path) -> Path:
    return sglang_site(tmp_path / "site")


def report(python: str, env: dict[str, str], cwd: Path) -> dict:
    done = run(python, REPORT, env, cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_child_without_eagle3_patch_or_libcst_gets_the_patched_class(bare_python, stand_in, tmp_path):
    seen = report(bare_python, handoff(stand_in), tmp_path)
    assert seen["result"] == "patched"
    assert seen["eagle3_patch"] is False and seen["libcst"] is False
    assert report(bare_python, plain(stand_in), tmp_path)["result"] == "stock"


def test_bootstrap_chains_to_debians_sitecustomize_in_the_stdlib_folder(bare_python, stand_in, tmp_path):
    stdlib = subprocess.run([bare_python, "-c", "import sitecustomize; print(sitecustomize.__file__)"],
                            env=plain(stand_in), capture_output=True, text=True, check=True).stdout.strip()
    assert os.path.dirname(stdlib) != BOOTSTRAP_DIR
    seen = report(bare_python, handoff(stand_in), tmp_path)
    assert seen["sitecustomize"] == stdlib
    assert seen["result"] == "patched"


def test_users_sitecustomize_on_pythonpath_still_runs_and_keeps_its_place(bare_python, stand_in, tmp_path):
    user = tmp_path / "user-site"
    user.mkdir()
    (user / "sitecustomize.py").write_text("MARK = 'the user sitecustomize ran'\n")
    env = handoff(stand_in, pythonpath=os.pathsep.join([str(user), str(stand_in)]))
    assert env["PYTHONPATH"].split(os.pathsep) == [str(BOOTSTRAP_DIR), str(user), str(stand_in)]

    for python in (bare_python, sys.executable):
        seen = report(python, env, tmp_path)
        assert seen["user_sitecustomize"] == "the user sitecustomize ran"
        assert seen["result"] == "patched"
        order = [seen["sys_path"].index(p) for p in (str(BOOTSTRAP_DIR), str(user), str(stand_in))]
        assert order == sorted(order)


def test_traceback_and_getsource_show_the_patched_lines(bare_python, stand_in, tmp_path):
    seen = report(bare_python, handoff(stand_in), tmp_path)
    assert 'raise RuntimeError("raised inside a patched method")' in seen["traceback"]
    assert f'File "{module_file(stand_in).resolve()}", line 6, in fail' in seen["traceback"]
    assert 'return "patched"' in seen["getsource"] and "stock" not in seen["getsource"]


CAUGHT_LIKE_THE_REGISTRY = '''\
import importlib
try:
    importlib.import_module("sglang.srt.models.qwen3_5")
except Exception as exc:  # SGLang's registry: log a line, fall back, carry on
    print("swallowed", exc)
print("carried on")
'''


def test_a_file_changed_after_validation_stops_the_process_even_under_a_catch_all(
        bare_python, stand_in, tmp_path):
    env = handoff(stand_in)
    module_file(stand_in).write_text(STOCK + "# edited after eagle3-patch looked\n")

    done = run(bare_python, CAUGHT_LIKE_THE_REGISTRY, env, tmp_path)

    assert done.returncode == EXIT_STALE
    assert "eagle3-patch:" in done.stderr and "changed after eagle3-patch validated it" in done.stderr
    assert "swallowed" not in done.stdout and "carried on" not in done.stdout


def test_a_module_found_at_another_path_stops_the_process(bare_python, stand_in, tmp_path):
    other = sglang_site(tmp_path / "other-site")
    env = handoff(stand_in)
    env["PYTHONPATH"] = os.pathsep.join([str(BOOTSTRAP_DIR), str(other), str(stand_in)])

    done = run(bare_python, CAUGHT_LIKE_THE_REGISTRY, env, tmp_path)

    assert done.returncode == EXIT_STALE
    assert str(module_file(other).resolve()) in done.stderr and "eagle3-patch" in done.stderr


def test_a_variable_without_module_names_stops_every_python_loudly(bare_python, stand_in, tmp_path):
    env = {**handoff(stand_in), PAYLOAD_VAR: "not-base64-gzip"}
    done = run(bare_python, "print('ran')", env, tmp_path)
    assert done.returncode == EXIT_STALE and "ran" not in done.stdout
    assert f"eagle3-patch: the environment variable {PAYLOAD_VAR} is damaged" in done.stderr


def _gzipped(document) -> str:
    return base64.b64encode(gzip.compress(json.dumps(document).encode())).decode()


def _gzipped_text(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode())).decode()


@pytest.mark.parametrize("sources", first_fast(
    "not-base64-gzip", "H4sIAAAAAAAC/w==", _gzipped({"modules": [{"name": MODULE}]}),
    _gzipped({"modules": [{"name": MODULE, "path": "/x", "sha256": "0", "data": 7}]}),
    _gzipped({"modules": [{"name": MODULE, "path": "/x", "sha256": "0", "data": "\u0100"}]}),
    _gzipped_text("[" * 200_000 + "]" * 200_000),
    _gzipped_text('{"modules": ' + "[" * 200_000 + "]" * 200_000 + "}"),
    _gzipped([None]), _gzipped({"modules": 5}), _gzipped({"modules": {"a": 1}}),
    _gzipped({"modules": [{"name": [MODULE], "path": "/x", "sha256": "0", "data": ""}]}),
    _gzipped({"modules": [{"name": MODULE, "path": ["/x"], "sha256": "0", "data": ""}]}),
    _gzipped_text("9" * 10_000),
), ids=["not-base64", "truncated-gzip", "no-fields", "data-not-text", "data-not-bytes",
        "deeply-nested", "deeply-nested-modules", "a-list", "modules-a-number", "modules-a-dict",
        "name-a-list", "path-a-list", "a-huge-number"])
def test_damaged_sources_stop_the_process_that_imports_a_listed_module(bare_python, stand_in,
                                                                     tmp_path, sources):
    env = {**handoff(stand_in), PAYLOAD_VAR: f"{MODULE};{sources}"}
    unrelated = run(bare_python, "import json; print('ran')", env, tmp_path)
    assert unrelated.returncode == 0 and unrelated.stdout == "ran\n"  # decoded only when needed
    done = run(bare_python, CAUGHT_LIKE_THE_REGISTRY, env, tmp_path)
    assert done.returncode == EXIT_STALE and "carried on" not in done.stdout
    assert f"eagle3-patch: the environment variable {PAYLOAD_VAR} is damaged" in done.stderr


# What a child may use: Python's own start-up (~20 MB of address space) and a document at
# its limit, far below what the bomb inflates to.
CHILD_MEMORY = 128 << 20


def _with_limited_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))


def _gzip_bomb(mebibytes: int) -> bytes:
    """One gzip member of ``mebibytes`` MiB of zeros, ~1 KB per MiB. Each MiB is deflated once and
    repeated: a full flush makes every block independent of the ones before it."""
    zeros = b"\0" * (1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mebibytes):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + block * mebibytes + deflate.flush() + struct.pack("<II", crc, (mebibytes << 20) & 0xFFFFFFFF)


def _handoff_of(site: Path, sources: bytes) -> dict[str, str]:
    """The hand-off of ``sources`` (the gzipped document), as many variables as it takes."""
    encoded = f"{MODULE};{base64.b64encode(sources).decode()}"
    env = handoff(site)
    return {**{k: v for k, v in env.items() if not k.startswith(PAYLOAD_VAR)},
            **child_env(encoded, {"PYTHONPATH": str(site)})}


def _over_the_limits(site: Path, what: str) -> dict[str, str]:
    if what == "a-decompression-bomb":  # 192 MiB of zeros in ~200 KB
        return _handoff_of(site, _gzip_bomb(192))
    # A valid hand-off for the stand-in, padded past 1 MiB compressed: run itself refuses to make one.
    noise = base64.b64encode(random.Random(17).randbytes(900_000)).decode()
    patch = module_patch(site)
    document = {"tool_version": "test", "bytecode_key": None,
                "modules": [{"name": MODULE, "path": patch.path, "sha256": patch.sha256,
                             "data": PATCHED + f'_PADDING = "{noise}"\n'}]}
    env = _handoff_of(site, gzip.compress(json.dumps(document).encode()))
    assert sum(len(v) for k, v in env.items() if k.startswith(PAYLOAD_VAR)) > 1 << 20
    return env


@pytest.mark.parametrize("what", ["oversized", "a-decompression-bomb"])
def test_a_payload_over_its_limits_stops_the_process_within_a_small_memory_limit(bare_python, stand_in,
                                                                                tmp_path, what):
    env = _over_the_limits(stand_in, what)
    done = subprocess.run([bare_python, "-c", CAUGHT_LIKE_THE_REGISTRY], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, preexec_fn=_with_limited_memory)
    assert done.returncode == EXIT_STALE and "carried on" not in done.stdout, done.stderr
    # Refused for its size, not starved of memory while inflating it.
    assert f"the environment variable {PAYLOAD_VAR} is damaged" in done.stderr
    assert "the limit of" in done.stderr and "MemoryError" not in done.stderr, done.stderr


def _bytecode(site: Path) -> dict[str, tuple[bytes, int]]:
    cache = site / "sglang/srt/models/__pycache__"
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(cache.iterdir())}


@pytest.mark.parametrize("mode", [py_compile.PycInvalidationMode.TIMESTAMP,
                                  py_compile.PycInvalidationMode.UNCHECKED_HASH],
                         ids=["timestamp", "unchecked-hash"])
def test_stock_bytecode_is_neither_read_nor_written(bare_python, stand_in, tmp_path, mode):
    # As pip leaves an installation: every module compiled up front.
    assert compileall.compile_dir(str(stand_in), quiet=1, invalidation_mode=mode)
    before = _bytecode(stand_in)
    assert any(name.startswith("qwen3_5.") for name in before)

    # PYTHONDONTWRITEBYTECODE is unset in both children (see handoff/plain).
    assert report(bare_python, handoff(stand_in), tmp_path)["result"] == "patched"
    assert _bytecode(stand_in) == before
    # A later plain run still loads SGLang's own code.
    assert report(bare_python, plain(stand_in), tmp_path)["result"] == "stock"


def test_no_bytecode_is_created_for_a_served_module(bare_python, stand_in, tmp_path):
    env = handoff(stand_in)
    assert report(bare_python, env, tmp_path)["result"] == "patched"
    cache = stand_in / "sglang/srt/models/__pycache__"
    assert not list(cache.glob("qwen3_5.*")), "the served module must leave no .pyc"
    # The same interpreter does write bytecode for an ordinary module.
    assert list(cache.glob("__init__.*.pyc"))


SPAWN_MAIN = '''\
import multiprocessing, os, sys

def capture(queue):
    from sglang.srt.models.qwen3_5 import Qwen3_5ForCausalLM
    queue.put((os.getpid(), Qwen3_5ForCausalLM().set_eagle3_layers_to_capture([1])))

if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")  # as SGLang's engine forces
    queue = context.Queue()
    worker = context.Process(target=capture, args=(queue,))
    worker.start()
    pid, result = queue.get(timeout=60)
    worker.join()
    print(pid != os.getpid(), result)
'''


def test_a_multiprocessing_spawn_child_gets_the_patched_class(bare_python, stand_in, tmp_path):
    main = tmp_path / "server.py"
    main.write_text(SPAWN_MAIN)
    done = subprocess.run([bare_python, str(main)], env=handoff(stand_in), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "patched"]


def _plant_in_memo(env: dict, stand_in, result: str) -> Path:
    """Replace the one memoised compiled module by code that returns ``result``; the memo."""
    (memo,) = (Path(env["XDG_CACHE_HOME"]) / "eagle3-patch/bytecode").iterdir()
    other = PATCHED.replace('return "patched"', f'return "{result}"')
    memo.write_bytes(sealed_code(other, str(module_file(stand_in).resolve())))
    return memo


def test_compiled_code_is_memoised_in_the_users_cache_folder(bare_python, stand_in, tmp_path):
    env = handoff(stand_in)
    assert report(bare_python, env, tmp_path)["result"] == "patched"
    # Prove the next process reads it: give it code only the memo holds.
    _plant_in_memo(env, stand_in, "from the memo")
    assert report(bare_python, env, tmp_path)["result"] == "from the memo"


_SEALED_INT = hashlib.sha256(marshal.dumps(42)).digest() + marshal.dumps(42)


# "[" * 400: unsealed, marshal would allocate a billion-item list per "[" (minutes each run).
@pytest.mark.parametrize("damage", first_fast(b"", b"not marshal data", marshal.dumps(42), b"N", _SEALED_INT,
                                               b"[" * 400, b"\0" * 32 + b"[" * 400),
                         ids=["empty", "garbage", "an-int", "none", "a-sealed-int", "nested-lists",
                              "nested-lists-behind-a-wrong-seal"])
def test_a_damaged_memo_is_compiled_afresh(bare_python, stand_in, tmp_path, damage):
    env = handoff(stand_in)
    report(bare_python, env, tmp_path)
    (memo,) = (Path(env["XDG_CACHE_HOME"]) / "eagle3-patch/bytecode").iterdir()
    memo.write_bytes(damage)
    assert report(bare_python, env, tmp_path)["result"] == "patched"


def test_an_unwritable_cache_folder_only_costs_a_compile(bare_python, stand_in, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = handoff(stand_in, XDG_CACHE_HOME=str(blocker))
    assert report(bare_python, env, tmp_path)["result"] == "patched"
    assert blocker.read_text() == ""


def test_without_an_absolute_home_nothing_is_memoised_in_the_working_directory(bare_python, stand_in,
                                                                                tmp_path):
    # A container user with no passwd entry and no HOME: "~" stays "~".
    env = handoff(stand_in, HOME="relative-home")
    del env["XDG_CACHE_HOME"]
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    assert report(bare_python, env, workdir)["result"] == "patched"
    assert list(workdir.iterdir()) == []


def test_a_memo_folder_others_may_write_is_not_trusted(bare_python, stand_in, tmp_path):
    env = handoff(stand_in)
    assert report(bare_python, env, tmp_path)["result"] == "patched"
    memo = _plant_in_memo(env, stand_in, "planted by another user")
    memo.parent.chmod(0o777)
    assert report(bare_python, env, tmp_path)["result"] == "patched"


@pytest.mark.parametrize("switch", first_fast("no bytecode_key from the parent", "EAGLE3_PATCH_NO_CACHE=1"))
def test_a_child_told_to_use_no_cache_memoises_nothing(bare_python, stand_in, tmp_path, switch):
    if "=" in switch:
        env = handoff(stand_in, EAGLE3_PATCH_NO_CACHE="1")
    else:  # the parent ran with --no-cache
        given = {"PYTHONPATH": str(stand_in)}
        env = {**handoff(stand_in), **child_env(encode([module_patch(stand_in)], "test", None), given)}
    assert report(bare_python, env, tmp_path)["result"] == "patched"
    assert not Path(env["XDG_CACHE_HOME"]).exists()
    assert report(bare_python, handoff(stand_in), tmp_path)["result"] == "patched"
    assert list((Path(env["XDG_CACHE_HOME"]) / "eagle3-patch/bytecode").iterdir())


def _another_installation(root: Path) -> Path:
    """Another venv's eagle3-patch: a copy of the bootstrap folder, and the rules it loads, at its own path."""
    package = root / "lib/python3/site-packages/eagle3_patch"
    folder = package / "inmemory/bootstrap"
    folder.mkdir(parents=True)
    (folder / "sitecustomize.py").write_bytes((Path(BOOTSTRAP_DIR) / "sitecustomize.py").read_bytes())
    (package / "sharedrules.py").write_bytes((Path(BOOTSTRAP_DIR).parents[1] / "sharedrules.py").read_bytes())
    return folder


COUNTED = """\
import builtins
builtins.USER_SITECUSTOMIZE_RUNS = getattr(builtins, "USER_SITECUSTOMIZE_RUNS", 0) + 1
MARK = "the user sitecustomize ran"
"""
CHAINED = """\
import builtins, json, sys
from sglang.srt.models.qwen3_5 import Qwen3_5ForCausalLM as C
print(json.dumps({"result": C().set_eagle3_layers_to_capture([1]),
                  "runs": getattr(builtins, "USER_SITECUSTOMIZE_RUNS", 0),
                  "finders": sum(type(f).__name__ == "_PatchedSourceFinder" for f in sys.meta_path)}))
"""


@pytest.mark.parametrize("order", first_fast("ours-first", "other-between", "twice-each"))
def test_two_installations_bootstraps_on_one_pythonpath_chain_once_to_the_users_sitecustomize(
        bare_python, stand_in, tmp_path, order):
    other = str(_another_installation(tmp_path / "other-venv"))
    user = tmp_path / "user-site"
    user.mkdir()
    (user / "sitecustomize.py").write_text(COUNTED)
    ours, theirs = str(BOOTSTRAP_DIR), str(user)
    entries = {"ours-first": [ours, other, theirs], "other-between": [ours, theirs, other],
               "twice-each": [ours, other, ours, other, theirs]}[order]
    env = handoff(stand_in, pythonpath=os.pathsep.join([*entries, str(stand_in)]))
    env["PYTHONPATH"] = os.pathsep.join([*entries, str(stand_in)])  # exactly as given

    for python in (bare_python, sys.executable):
        done = run(python, CHAINED, env, tmp_path)
        assert done.returncode == 0 and "Error in sitecustomize" not in done.stderr, done.stderr
        assert json.loads(done.stdout) == {"result": "patched", "runs": 1, "finders": 1}


def test_a_bootstrap_on_the_users_own_pythonpath_without_a_payload_runs_their_sitecustomize_once(
        bare_python, stand_in, tmp_path):
    user = tmp_path / "user-site"
    user.mkdir()
    (user / "sitecustomize.py").write_text(COUNTED)
    env = plain(stand_in)
    env["PYTHONPATH"] = os.pathsep.join([str(_another_installation(tmp_path / "venv")), str(BOOTSTRAP_DIR),
                                         str(user), str(stand_in)])
    done = run(bare_python, CHAINED, env, tmp_path)
    assert done.returncode == 0 and "Error in sitecustomize" not in done.stderr, done.stderr
    assert json.loads(done.stdout) == {"result": "stock", "runs": 1, "finders": 0}


def test_a_bootstrap_run_again_in_the_same_process_adds_no_second_finder(bare_python, stand_in, tmp_path):
    # As an earlier release's bootstrap, first on PYTHONPATH, chains to this one.
    again = f"import runpy; runpy.run_path({os.path.join(BOOTSTRAP_DIR, 'sitecustomize.py')!r})\n" + CHAINED
    done = run(bare_python, again, handoff(stand_in), tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["finders"] == 1


UNCAUGHT = {
    "main thread": "from sglang.srt.models.qwen3_5 import Qwen3_5ForCausalLM as C\nC().fail()\n",
    "a thread": ("import threading\nfrom sglang.srt.models.qwen3_5 import Qwen3_5ForCausalLM as C\n"
                 "t = threading.Thread(target=C().fail, name='worker')\nt.start()\nt.join()\n"),
}
PYENV = sorted(Path.home().glob(".pyenv/versions/3.1[0-3].*/bin/python3"))


@pytest.mark.parametrize("where", UNCAUGHT)
@pytest.mark.parametrize("python", first_fast(DEBIAN_PYTHON, *PYENV),
                         ids=lambda p: "debian" if p == DEBIAN_PYTHON else p.parts[-3])
def test_an_uncaught_traceback_through_a_patched_method_shows_the_patched_line(
        stand_in, tmp_path, python, where):
    done = run(str(python), UNCAUGHT[where], handoff(stand_in), tmp_path)
    lines = done.stderr.splitlines()
    at = lines.index(f'  File "{module_file(stand_in).resolve()}", line 6, in fail')
    assert lines[at + 1].strip() == 'raise RuntimeError("raised inside a patched method")', done.stderr
    assert lines[-1] == "RuntimeError: raised inside a patched method"
    if where == "a thread":
        assert "Exception in thread worker:" in done.stderr and done.returncode == 0
    else:
        assert lines[0] == "Traceback (most recent call last):" and done.returncode == 1


OLDER = sorted(Path.home().glob(".pyenv/versions/3.[7-9].*/bin/python3"))


@pytest.mark.parametrize("python", OLDER, ids=lambda p: p.parts[-3])
def test_an_older_python_started_under_run_hears_nothing_from_the_bootstrap(stand_in, tmp_path, python):
    # SGLang needs 3.10, but a helper COMMAND starts may be older, and the bootstrap (with the rules it
    # loads) runs there too: an error in sitecustomize is printed by every such process.
    done = run(str(python), "print('ran')", handoff(stand_in), tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ran\n", "")


def _big_handoff(site: Path) -> dict[str, str]:
    """The hand-off of a patched module too large for one variable (incompressible padding)."""
    noise = base64.b64encode(random.Random(17).randbytes(300_000)).decode()
    module = module_file(site)
    patch = ModulePatch(MODULE, str(module.resolve()), hashlib.sha256(module.read_bytes()).hexdigest(),
                        PATCHED + f'_PADDING = "{noise}"\n')
    env = handoff(site)
    pieces = child_env(encode([patch], "test"), {"PYTHONPATH": str(site)})
    return {**{k: v for k, v in env.items() if not k.startswith(PAYLOAD_VAR)}, **pieces}


def test_a_payload_in_several_variables_is_joined_and_served(bare_python, stand_in, tmp_path):
    env = _big_handoff(stand_in)
    assert [k for k in env if k.startswith(PAYLOAD_VAR)] == [PAYLOAD_VAR, f"{PAYLOAD_VAR}_1", f"{PAYLOAD_VAR}_2",
                                                         f"{PAYLOAD_VAR}_3"]
    assert report(bare_python, env, tmp_path)["result"] == "patched"


@pytest.mark.parametrize("damage", first_fast("a piece missing", "a piece empty", "count not a number",
                                               "count of one", "count too large", "count in other digits"))
def test_a_damaged_payload_in_several_variables_stops_every_python_loudly(bare_python, stand_in,
                                                                        tmp_path, damage):
    env = _big_handoff(stand_in)
    names, count, first = env[PAYLOAD_VAR].split(";")
    if damage == "a piece missing":
        del env[f"{PAYLOAD_VAR}_2"]
    elif damage == "a piece empty":
        env[f"{PAYLOAD_VAR}_3"] = ""
    else:
        count = {"count not a number": "x", "count of one": "1", "count too large": "17",
                 "count in other digits": "\u0664"}[damage]
        env[PAYLOAD_VAR] = f"{names};{count};{first}"
    done = run(bare_python, "print('ran')", env, tmp_path)
    assert done.returncode == EXIT_STALE and "ran" not in done.stdout
    assert f"eagle3-patch: the environment variable {PAYLOAD_VAR}" in done.stderr


@pytest.mark.parametrize("extra", [-1, 0, 1, 131072 - 40, 131072 * 3])
def test_every_payload_variable_passes_exec_at_the_one_variable_limit(extra):
    names = f"{MODULE};"
    encoded = names + "H4sI" + "A" * (MAX_VARIABLE_BYTES - len(f"{PAYLOAD_VAR}={names}H4sI") - 1 + extra)
    env = child_env(encoded, {})
    pieces = {k: v for k, v in env.items() if k.startswith(PAYLOAD_VAR)}
    assert (len(pieces) == 1) == (extra <= 0)
    assert all(len(f"{k}={v}") + 1 <= MAX_VARIABLE_BYTES for k, v in pieces.items())
    done = subprocess.run(["/bin/sh", "-c", 'printf %s "$EAGLE3_PATCH_INMEMORY"'],
                          env={"PATH": os.environ["PATH"], **pieces}, capture_output=True, text=True)
    assert done.returncode == 0
    head = done.stdout
    if len(pieces) == 1:
        assert head == encoded
    else:
        count, first = head[len(names):].split(";")
        joined = names + first + "".join(pieces[f"{PAYLOAD_VAR}_{i}"] for i in range(1, int(count)))
        assert int(count) == len(pieces) and joined == encoded
