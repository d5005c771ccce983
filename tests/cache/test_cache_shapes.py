"""Every cache entry of ours, edited into any other shape, is a miss: never an error, never exit 70.

A small generator takes a real entry and replaces every value in it, at every depth, by
values of other types and sizes (and drops or adds keys); each reader must answer with
nothing, or with a value it checked all the way down. Then `run` and `status` as a user
runs them, over entries damaged the same way: they succeed and write the entry again.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eagle3_patch.cache import analysismemo, usercache
from eagle3_patch.inmemory import memo as inmemory_memo
from eagle3_patch.inmemory.payload import child_env, decode
from eagle3_patch.engine.apply import apply
from eagle3_patch.engine.status import status
from eagle3_patch.site.locate import locate_sglang
from eagle3_patch.site.snapshot import read_sources
from eagle3_patch.inmemory.planner import in_memory_handoff

from support.marks import first_fast

WRONG = [None, True, False, 0, -1, 2**64, 10**300, 1e308, -0.0, "", "x", "\u0000", "\udcff",
         [], [[[[[]]]]], [None, 1, "a"], {}, {"x": 1}, {"": [{}]}]
# Not JSON of another shape but no JSON at all, or JSON past what a parser accepts.
RAW = [b"", b"{", b"\xff\xfe", b"null", b"[]", b"1" * 5000, b"[" * 100_000 + b"]" * 100_000,
       b'{"a": ' * 50_000 + b"1" + b"}" * 50_000]


def _paths(value, path=()) -> Iterator[tuple]:
    yield path
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        if not (isinstance(value, list) and key > 1):  # a list's first two items stand for the rest
            yield from _paths(child, (*path, key))


def _replaced(document, path: tuple, new):
    if not path:
        return new
    changed = copy.deepcopy(document)
    parent = changed
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return changed


def _dropped(document, path: tuple):
    changed = copy.deepcopy(document)
    parent = changed
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return changed


def wrong_shapes(document) -> Iterator[object]:
    """``document`` with one value, anywhere in it, of another type or size; a key dropped or added."""
    for path in _paths(document):
        here = document
        for key in path:
            here = here[key]
        for new in WRONG:
            if type(new) is not type(here) or new != here:
                yield _replaced(document, path, new)
        if path:
            yield _dropped(document, path)
        if isinstance(here, dict):
            yield _replaced(document, path, {**here, "extra": [1]})


def _without_extra(value):
    if isinstance(value, dict):
        return {key: _without_extra(item) for key, item in value.items() if key != "extra"}
    return [_without_extra(item) for item in value] if isinstance(value, list) else value


def _entries(document) -> Iterator[bytes]:
    yield from RAW
    for shape in wrong_shapes(document):
        yield json.dumps(shape).encode()


def test_the_generator_reaches_every_value_of_a_nested_document():
    shapes = list(wrong_shapes({"a": [{"b": "c"}, 2, 3], "d": {}}))
    assert {"a": [{"b": None}, 2, 3], "d": {}} in shapes  # three levels down
    assert {"a": [{}, 2, 3], "d": {}} in shapes and {"d": {}} in shapes
    assert {"a": [{"b": "c"}, 2, 3], "d": {"extra": [1]}} in shapes
    assert {"a": [{"b": "c"}, 2, 3], "d": 10**300} in shapes


@pytest.fixture
def patched_install(site):
    install = locate_sglang(sglang_dir=site("0.5.21").package)
    apply(install)
    return install


@pytest.fixture
def unpatched_install(site):
    return locate_sglang(sglang_dir=site("0.5.21").package)


def _only_entry(folder: Path) -> Path:
    (entry,) = [path for path in folder.iterdir() if path.suffix == ".json"]
    return entry


def test_every_wrong_shape_of_an_analysis_memo_is_a_miss_or_exactly_what_it_says(patched_install,
                                                                                private_cache):
    status(patched_install)
    entry = _only_entry(private_cache / "eagle3-patch" / "analysis")
    good = json.loads(entry.read_bytes())
    files = read_sources(patched_install)
    key = analysismemo.memo_key(files, usercache.identity())
    assert analysismemo._load(key, files) is not None  # the reader does read the entry it is given
    tried = 0
    for damaged in _entries(good):
        entry.write_bytes(damaged)
        found = analysismemo._load(key, files)
        tried += 1
        # Accepted only where every value has the type it must have (a key added is passed
        # over): it says exactly what the entry says.
        assert found is None or analysismemo.to_json(found) == _without_extra(json.loads(damaged)["analysis"])
    assert tried > 500


def _handoff_entry(unpatched_install, private_cache) -> tuple[inmemory_memo.HandoffKey, Path]:
    in_memory_handoff(unpatched_install)
    key = inmemory_memo.key(read_sources(unpatched_install), usercache.identity())
    return key, private_cache / "eagle3-patch" / "inmemory" / f"{key.name}.json"


def _payload_shapes(encoded: str) -> Iterator[str]:
    """``encoded`` with its inner document in every wrong shape, encoded as the parent does."""
    names, _, data = encoded.partition(";")
    document = json.loads(gzip.decompress(base64.b64decode(data)))
    for module in document["modules"]:
        module["data"] = module["data"][:50]  # the shapes, not 100 KB of source, are under test
    for shape in wrong_shapes(document):
        yield names + ";" + base64.b64encode(gzip.compress(json.dumps(shape).encode())).decode()
    yield "x" + encoded
    yield encoded[:-10]
    yield encoded.replace(";", ";\u0000")
    yield names + ";" + base64.b64encode(gzip.compress(b"[" * 50_000 + b"]" * 50_000)).decode()
    yield names + ";" + base64.b64encode(gzip.compress(b" " * (40 << 20))).decode()  # inflates to 40 MB


def test_every_wrong_shape_of_a_handoff_memo_is_a_miss_or_usable(unpatched_install, private_cache):
    key, entry = _handoff_entry(unpatched_install, private_cache)
    good = json.loads(entry.read_bytes())
    assert inmemory_memo.load(key) == good
    shapes = [*_entries(good), *(json.dumps({**good, "encoded": encoded}).encode()
                                  for encoded in _payload_shapes(good["encoded"]))]
    for damaged in shapes:
        entry.write_bytes(damaged)
        found = inmemory_memo.load(key)
        if found is not None:  # what run does with a hit: none of it may raise
            child_env(found["encoded"], {})
            assert ", ".join(found["files"]) and len(decode(found["encoded"])) == len(found["files"])
    assert len(shapes) > 200


RUN_DAMAGE = {
    "files-of-numbers": lambda good: {**good, "files": [1, 2]},
    "files-a-string": lambda good: {**good, "files": "qwen3_5.py"},
    "encoded-with-a-nul": lambda good: {**good, "encoded": "a;\u0000"},
    "encoded-not-a-payload": lambda good: {**good, "encoded": "sglang.srt.models.qwen3_5;AAAA"},
    "a-list": lambda good: [good],
    "huge-number": lambda good: {**good, "encoded": 10**300},
    "payload-for-other-bytes": lambda good: {**good, "encoded": _other_sha256(good["encoded"])},
}


def _other_sha256(encoded: str) -> str:
    """``encoded`` serving the same modules for files of other bytes: every child would stop (exit 12)."""
    names, _, data = encoded.partition(";")
    document = json.loads(gzip.decompress(base64.b64decode(data)))
    for module in document["modules"]:
        module["sha256"] = "0" * 64
    return names + ";" + base64.b64encode(gzip.compress(json.dumps(document).encode())).decode()


@pytest.mark.parametrize("damage", first_fast(*RUN_DAMAGE.values()), ids=RUN_DAMAGE.keys())
def test_run_over_a_damaged_handoff_memo_succeeds_and_writes_it_again(site, private_cache, damage):
    s = site("0.5.21")
    command = ["run", "--dry-run", "--json", "--", sys.executable, "-c", "pass"]
    first = s.run(*command)
    assert first.returncode == 0, first.stderr
    entry = _only_entry(private_cache / "eagle3-patch" / "inmemory")
    good = json.loads(entry.read_bytes())
    entry.write_text(json.dumps(damage(good)))
    again = s.run(*command)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == json.loads(first.stdout)
    assert json.loads(entry.read_bytes()) == good
