"""The user cache's one trust rule, for all three caches: the analysis memo, run's hand-off
memo and the bootstrap's compiled code.

An attacker who can write somewhere on the way to an entry (a shared XDG_CACHE_HOME)
flips a symlink between a folder of ours and one of theirs as fast as they can; a
process that checked a path and then opened it loads their file now and then. The
race tests run a bounded number of loads against such a flipper and count.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import eagle3_patch
from eagle3_patch.engine.status import status
from eagle3_patch.inmemory.planner import in_memory_handoff
from eagle3_patch.sharedrules import cache_root
from eagle3_patch.site.locate import locate_sglang
from eagle3_patch.ui import render

from support import userenv
from support.marks import first_fast
from support.serve_fixtures import write_drafter, write_target
from support.servedmodule import PATCHED, handoff, module_file, sealed_code, sglang_site
from support.sites import STANDIN_SGLANG_PARENTS, Site


OTHER = "e3i17x"  # owns what "another user" owns: an attacker, or the user sudo came from
USER = "e3i17"    # the unprivileged user who runs eagle3-patch
PLANTED = "planted by an attacker"
ENV_VAR = "EAGLE3_PATCH_INMEMORY"
# Loads per race: enough that a check-then-open hole shows (the issue saw 225 in 3000).
LOADS = 3000
LOADS_DEADLINE_S = 60


def _uid(user: str) -> int:
    return userenv.ensure_user(user).pw_uid


@pytest.fixture
def attacker() -> int:
    if os.geteuid() != 0:
        pytest.skip("giving files to another user needs root")
    return _uid(OTHER)


def _give(path: Path, uid: int) -> None:
    for item in [path, *path.rglob("*")]:
        os.chown(item, uid, uid, follow_symlinks=False)


FLIPPER = '''\
import os, sys
link, first, second = sys.argv[1:4]
swap = link + ".flip"
print("flipping", flush=True)
while True:
    for target in (first, second):
        os.symlink(target, swap)
        os.replace(swap, link)
'''


@contextmanager
def flipping(link: Path, ours: Path, theirs: Path) -> Iterator[None]:
    """``link`` switched between ``ours`` and ``theirs`` in another process, until the block ends."""
    flipper = subprocess.Popen([sys.executable, "-c", FLIPPER, str(link), str(ours), str(theirs)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert flipper.stdout.readline() == "flipping\n"
        yield
    finally:
        flipper.kill()
        flipper.wait()
        flipper.stdout.close()


def _race_root(tmp_path: Path, cache: str, name: str, ours: bytes, theirs: bytes,
               attacker: int) -> tuple[Path, Path, Path, Path]:
    """A shared cache root whose ``eagle3-patch`` entry the attacker may replace, and the two
    trees it flips between: ours (private, ``ours`` at ``cache/name``) and theirs (``theirs``)."""
    shared = tmp_path / "shared-cache"
    shared.mkdir()
    shared.chmod(0o777)  # like a volume every container user may write
    trees = []
    for owner, label, data in ((None, "ours", ours), (attacker, "theirs", theirs)):
        tree = tmp_path / f"tree-{label}"
        (tree / cache).mkdir(parents=True, mode=0o700)
        (tree / cache / name).write_bytes(data)
        (tree / cache / name).chmod(0o600)
        if owner is not None:
            _give(tree, owner)
        trees.append(tree)
    link = shared / "eagle3-patch"
    link.symlink_to(trees[0])
    return shared, link, trees[0], trees[1]


# --- the bootstrap's compiled code ---------------------------------------------------------

LOAD_IN_A_LOOP = '''\
import importlib.util, json, sys, time
counts = {}
deadline = time.monotonic() + float(sys.argv[2])
for _ in range(int(sys.argv[1])):
    spec = importlib.util.find_spec("sglang.srt.models.qwen3_5")
    namespace = {}
    exec(spec.loader.get_code(spec.name), namespace)
    result = namespace["Qwen3_5ForCausalLM"]().set_eagle3_layers_to_capture([1])
    counts[result] = counts.get(result, 0) + 1
    if time.monotonic() > deadline:
        break
print(json.dumps(counts))
'''


def _learned_bytecode_entry(stand_in: Path, tmp_path: Path) -> Path:
    """Where the bootstrap memoises the stand-in's code: learnt from a run in a private cache."""
    env = handoff(stand_in)
    done = subprocess.run([sys.executable, "-c", LOAD_IN_A_LOOP, "1", "10"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (entry,) = (Path(env["XDG_CACHE_HOME"]) / "eagle3-patch" / "bytecode").iterdir()
    return entry


@pytest.mark.slow
def test_a_flipped_symlink_never_loads_an_attackers_compiled_code(tmp_path, attacker):
    stand_in = sglang_site(tmp_path / "site")
    entry = _learned_bytecode_entry(stand_in, tmp_path)
    theirs = PATCHED.replace('return "patched"', f'return "{PLANTED}"')
    planted = sealed_code(theirs, str(module_file(stand_in).resolve()))
    shared, link, ours, attackers = _race_root(tmp_path, "bytecode", entry.name, entry.read_bytes(),
                                               planted, attacker)
    env = handoff(stand_in, XDG_CACHE_HOME=str(shared))

    with flipping(link, ours, attackers):
        done = subprocess.run([sys.executable, "-c", LOAD_IN_A_LOOP, str(LOADS), str(LOADS_DEADLINE_S)],
                              env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=LOADS_DEADLINE_S + 60)

    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)
    assert counts.get(PLANTED, 0) == 0, counts
    assert counts["patched"] >= 100, counts  # the loop ran: a real race, not an early exit


# --- run's hand-off memo -------------------------------------------------------------------

def _encoded_with(encoded: str, data: str) -> str:
    names, _, sources = encoded.partition(";")
    document = json.loads(gzip.decompress(base64.b64decode(sources)))
    document["modules"][0]["data"] = data
    return names + ";" + base64.b64encode(gzip.compress(json.dumps(document).encode())).decode()


@pytest.mark.slow
def test_a_flipped_symlink_never_hands_off_an_attackers_payload(site, tmp_path, monkeypatch, attacker):
    install = locate_sglang(sglang_dir=str(site("0.5.12").package))
    learned = tmp_path / "learn"
    monkeypatch.setenv("XDG_CACHE_HOME", str(learned))
    in_memory_handoff(install)
    (entry,) = (learned / "eagle3-patch" / "inmemory").iterdir()
    memo = json.loads(entry.read_text())
    planted = {**memo, "encoded": _encoded_with(memo["encoded"], PLANTED), "files": [PLANTED]}
    shared, link, ours, attackers = _race_root(tmp_path, "inmemory", entry.name, entry.read_bytes(),
                                               json.dumps(planted).encode(), attacker)
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))

    summaries = []
    with flipping(link, ours, attackers):
        for _ in range(LOADS // 3):  # each computes the key: ~3 ms
            summaries.append(in_memory_handoff(install).summary)

    assert not [s for s in summaries if PLANTED in s]
    assert len(summaries) == LOADS // 3 and all("qwen3_5.py" in s for s in summaries)


# --- the analysis memo ---------------------------------------------------------------------

@pytest.mark.slow
def test_a_flipped_symlink_never_decides_status_from_an_attackers_analysis(site, tmp_path, monkeypatch,
                                                                         attacker):
    install = locate_sglang(sglang_dir=str(site("0.5.21").package))
    learned = tmp_path / "learn"
    monkeypatch.setenv("XDG_CACHE_HOME", str(learned))
    status(install)
    (entry,) = (learned / "eagle3-patch" / "analysis").iterdir()
    memo = json.loads(entry.read_text())
    memo["analysis"]["reason"] = PLANTED
    shared, link, ours, attackers = _race_root(tmp_path, "analysis", entry.name, entry.read_bytes(),
                                               json.dumps(memo).encode(), attacker)
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))

    answers = []
    with flipping(link, ours, attackers):
        for _ in range(LOADS // 3):
            answers.append(json.dumps(render.to_json(status(install))))

    assert not [a for a in answers if PLANTED in a]
    assert len(answers) == LOADS // 3


# --- someone else's cache root -------------------------------------------------------------

COMPILE_MODEL = STANDIN_SGLANG_PARENTS + '''\
spec = importlib.util.find_spec("sglang.srt.models.qwen3_5")
print("compiled", "Qwen3_5ForCausalLM" in spec.loader.get_code(spec.name).co_names)
'''


def _as_user_runs(world: userenv.UserEnv, s: Site, cache: Path) -> None:
    """status, then run (whose child compiles the patched module), as USER with ``cache``."""
    env = s.env(HOME="/nonexistent", XDG_CACHE_HOME=str(cache))
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    status = world.cli(USER, "status", "--json", env=env, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    ran = world.cli(USER, "run", "--", str(world.python), "-c", COMPILE_MODEL, str(s.root), env=env,
                    capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "compiled True\n"


@pytest.mark.slow
def test_a_cache_root_owned_by_another_user_is_used_by_no_cache(user_env, attacker):
    root = user_env.folder("e3i17-")
    try:
        s = Site(root / "site", "0.5.12")
        theirs = root / "their-cache"
        theirs.mkdir()
        theirs.chmod(0o1777)  # writable by USER too: only the trust rule keeps USER out
        os.chown(theirs, attacker, attacker)
        _as_user_runs(user_env, s, theirs)
        assert sorted(p.name for p in theirs.rglob("*")) == []

        # The same runs with a cache of USER's own fill all three caches: the runs above
        # would have written, had they trusted the folder.
        mine = root / "user-cache"
        mine.mkdir(mode=0o700)
        os.chown(mine, _uid(USER), _uid(USER))
        _as_user_runs(user_env, s, mine)
        assert sorted(p.name for p in (mine / "eagle3-patch").iterdir()) == \
            ["analysis", "bytecode", "inmemory"]
        assert all(list(p.iterdir()) for p in (mine / "eagle3-patch").iterdir())
    finally:
        shutil.rmtree(root)


# --- no cache means no cache ---------------------------------------------------------------

def _written(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def _run_and_serve(s: Site, tmp_path: Path, options: list[str], **extra: str) -> None:
    env = {k: v for k, v in s.env(**extra).items() if k != "PYTHONDONTWRITEBYTECODE"}
    ran = subprocess.run([sys.executable, "-m", "eagle3_patch", "run", *options, "--", sys.executable,
                          "-c", COMPILE_MODEL, str(s.root)], env=env, capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0 and ran.stdout == "compiled True\n", ran.stderr
    serve = subprocess.run([sys.executable, "-m", "eagle3_patch", "serve", "--in-memory", "--dry-run",
                            *options, "--model", str(write_target(tmp_path / "target")),
                            "--drafter", str(write_drafter(tmp_path / "compressed"))],
                           env=env, capture_output=True, text=True, timeout=120)
    assert serve.returncode == 0 and ENV_VAR in serve.stdout, serve.stderr


@pytest.mark.parametrize("switch", first_fast("--no-cache", "EAGLE3_PATCH_NO_CACHE=1"))
def test_no_cache_switches_keep_run_serve_and_the_bootstrap_from_writing(site, tmp_path, private_cache,
                                                                         switch):
    s = site("0.5.12")
    if switch.startswith("--"):
        _run_and_serve(s, tmp_path, [switch])
    else:
        name, value = switch.split("=")
        _run_and_serve(s, tmp_path, [], **{name: value})
    assert _written(private_cache) == []
    # The same commands without the switch write all three caches.
    _run_and_serve(s, tmp_path, [])
    assert {path.split("/")[1] for path in _written(private_cache)} == {"analysis", "bytecode", "inmemory"}


# --- our code is part of every key ---------------------------------------------------------

@pytest.mark.slow  # run as a process; test_a_module_in_a_new_sub_package_changes_every_key proves the key
def test_run_hands_off_afresh_after_eagle3_patchs_own_code_changes(site, tmp_path):
    s = site("0.5.12")
    other = tmp_path / "installed"
    shutil.copytree(Path(eagle3_patch.__file__).parent, other / "eagle3_patch",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {**s.env(), "PYTHONPATH": os.pathsep.join([str(other), str(s.root)])}

    def handed_off() -> dict:
        done = subprocess.run([sys.executable, "-m", "eagle3_patch", "run", "--dry-run", "--json", "--",
                               sys.executable, "-c", "pass"], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        sources = json.loads(done.stdout)["env"][ENV_VAR].partition(";")[2]
        return json.loads(gzip.decompress(base64.b64decode(sources)))

    assert "format" not in handed_off()
    # An upgrade of eagle3-patch whose payload (and bootstrap) now carry a format number.
    rules = other / "eagle3_patch" / "sharedrules.py"
    rules.write_text(rules.read_text().replace('document = {"tool_version"',
                                               'document = {"format": 2, "tool_version"', 1))
    assert handed_off()["format"] == 2


_CODE_IDENTITY = "from eagle3_patch.cache.usercache import code_identity; print(code_identity())"


def test_a_module_in_a_new_sub_package_changes_every_key(tmp_path):
    copy = tmp_path / "installed"
    shutil.copytree(Path(eagle3_patch.__file__).parent, copy / "eagle3_patch",
                    ignore=shutil.ignore_patterns("__pycache__"))

    def identity() -> str:
        done = subprocess.run([sys.executable, "-c", _CODE_IDENTITY], env={**os.environ, "PYTHONPATH": str(copy)},
                              capture_output=True, text=True, timeout=60, check=True)
        return done.stdout.strip()

    before = identity()
    assert before != "None"
    # A module moved into a package the key has never heard of (a later layout, say).
    (copy / "eagle3_patch" / "patch" / "rules").mkdir(parents=True)
    (copy / "eagle3_patch" / "patch" / "__init__.py").write_text("")
    (copy / "eagle3_patch" / "patch" / "rules" / "__init__.py").write_text("")
    assert identity() != before
    (copy / "eagle3_patch" / "patch" / "rules" / "moved.py").write_text("RULE = 1\n")
    with_module = identity()
    assert with_module != before
    (copy / "eagle3_patch" / "patch" / "rules" / "moved.py").write_text("RULE = 22\n")
    assert identity() != with_module


# --- the rule, as the bootstrap applies it --------------------------------------------------

def _move_and_link(path: Path) -> None:
    """``path`` moved beside itself (still ours, still private) and a symlink left in its place."""
    real = path.with_name(path.name + "-real")
    path.rename(real)
    path.symlink_to(real.name)


def _relative_xdg(root: Path) -> dict[str, str]:
    return {"XDG_CACHE_HOME": "relative/cache", "HOME": str(root.parent)}


# Each case changes one thing about a cache holding a valid entry (or its absence), and
# says whether the entry may be read. root: the cache root; entry: the entry's path.
TRUST_CASES = {
    "intact": (lambda root, entry, other: None, True),
    "no-root-yet": (lambda root, entry, other: shutil.rmtree(root), False),
    "root-is-a-link-to-a-folder-of-ours": (lambda root, entry, other: _move_and_link(root), True),
    "root-of-another-user": (lambda root, entry, other: os.chown(root, other(), other()), False),
    "root-group-writable": (lambda root, entry, other: root.chmod(0o770), False),
    "root-shared-sticky": (lambda root, entry, other: root.chmod(0o1777), False),
    "tool-folder-a-link": (lambda root, entry, other: _move_and_link(root / "eagle3-patch"), False),
    "tool-folder-of-another-user":
        (lambda root, entry, other: os.chown(root / "eagle3-patch", other(), other()), False),
    "tool-folder-others-write": (lambda root, entry, other: (root / "eagle3-patch").chmod(0o703), False),
    "cache-folder-a-link": (lambda root, entry, other: _move_and_link(entry.parent), False),
    "cache-folder-of-another-user": (lambda root, entry, other: os.chown(entry.parent, other(), other()),
                                     False),
    "cache-folder-group-writable": (lambda root, entry, other: entry.parent.chmod(0o730), False),
    "entry-a-link": (lambda root, entry, other: _move_and_link(entry), False),
    "entry-of-another-user": (lambda root, entry, other: os.chown(entry, other(), other()), False),
    "entry-group-writable": (lambda root, entry, other: entry.chmod(0o620), False),
    "entry-others-writable": (lambda root, entry, other: entry.chmod(0o602), False),
    "entry-a-fifo": (lambda root, entry, other: (entry.unlink(), os.mkfifo(entry, 0o600)), False),
    "entry-a-folder": (lambda root, entry, other: (entry.unlink(), entry.mkdir(mode=0o700)), False),
    "entry-oversized": (lambda root, entry, other: entry.write_bytes(entry.read_bytes() + b"\0" * (16 << 20)),
                        False),
    "relative-xdg-falls-back-to-home": (lambda root, entry, other: _relative_xdg(root), True),
    "no-absolute-home": (lambda root, entry, other: {"XDG_CACHE_HOME": "", "HOME": "relative-home"}, False),
    "empty-home": (lambda root, entry, other: {"XDG_CACHE_HOME": "", "HOME": ""}, False),
    "empty-home-relative-xdg": (lambda root, entry, other: {"XDG_CACHE_HOME": "cache", "HOME": ""}, False),
}


BARE_PYTHON = "/usr/bin/python3"
USE_MODEL = ("from sglang.srt.models.qwen3_5 import Qwen3_5ForCausalLM as C; "
             "print(C().set_eagle3_layers_to_capture([1]))")


# The rule is written once (sharedrules.py): these stand for the rest in the fast loop, CI runs them all.
FAST_TRUST_CASES = ("intact", "root-group-writable", "entry-a-link")


@pytest.mark.parametrize("change, readable", [
    pytest.param(*case, id=name, marks=() if name in FAST_TRUST_CASES else pytest.mark.slow)
    for name, case in TRUST_CASES.items()])
def test_the_bootstrap_loads_memoised_code_only_where_the_trust_rule_holds(tmp_path, change, readable):
    stand_in = sglang_site(tmp_path / "site")
    learned = _learned_bytecode_entry(stand_in, tmp_path)
    planted = sealed_code(PATCHED.replace('return "patched"', 'return "from the memo"'),
                          str(module_file(stand_in).resolve()))
    root = tmp_path / "home" / ".cache"
    entry = root / "eagle3-patch" / "bytecode" / learned.name
    entry.parent.mkdir(parents=True, mode=0o700)
    entry.write_bytes(planted)
    entry.chmod(0o600)
    where = {"XDG_CACHE_HOME": str(root), "HOME": str(root.parent)}
    changed = change(root, entry, lambda: _uid(OTHER))
    where.update(changed if isinstance(changed, dict) else {})

    done = subprocess.run([BARE_PYTHON, "-c", USE_MODEL], env=handoff(stand_in, **where), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout == ("from the memo\n" if readable else "patched\n")


# HOME and XDG_CACHE_HOME as a container, a CI job or a sudo may leave them; None: no cache.
ROOT_CASES = {
    "xdg-absolute": ({"XDG_CACHE_HOME": "/srv/cache", "HOME": "/home/u"}, "/srv/cache"),
    "xdg-absolute-home-empty": ({"XDG_CACHE_HOME": "/srv/cache", "HOME": ""}, "/srv/cache"),
    "xdg-relative": ({"XDG_CACHE_HOME": "cache", "HOME": "/home/u"}, "/home/u/.cache"),
    "xdg-empty": ({"XDG_CACHE_HOME": "", "HOME": "/home/u"}, "/home/u/.cache"),
    "home-relative": ({"XDG_CACHE_HOME": "", "HOME": "home/u"}, None),
    "home-empty": ({"XDG_CACHE_HOME": "", "HOME": ""}, None),
    "home-empty-xdg-relative": ({"XDG_CACHE_HOME": "cache", "HOME": ""}, None),
    "home-the-root-folder": ({"XDG_CACHE_HOME": "", "HOME": "/"}, "/.cache"),
    "home-with-a-trailing-slash": ({"XDG_CACHE_HOME": "", "HOME": "/home/u/"}, "/home/u/.cache"),
    "home-unset-passwd-entry": ({"XDG_CACHE_HOME": "", "HOME": None}, pwd.getpwuid(os.getuid()).pw_dir + "/.cache"),
}


@pytest.mark.parametrize("env, expected", ROOT_CASES.values(), ids=ROOT_CASES.keys())
def test_the_cache_root_is_an_absolute_xdg_cache_home_else_an_absolute_home_or_none(monkeypatch, env,
                                                                                   expected):
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    root = cache_root()
    assert (root and os.path.normpath(root)) == expected
