"""Hub drafters against a loopback stand-in Hub (HF_ENDPOINT): validated from config.json and a
ranged read of the weights' header before any weights are downloaded."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from eagle3_patch.errors import EXIT_BAD_INPUT

from support.hub_standin import COMMIT, StandInHub
from support.paths import TESTS
from support.releases import install_release
from support.serve_fixtures import (
    HUB_REPO, drafter_config, run_python, serve, standin_env, tree_digest, write_drafter, write_header, write_sharded,
    write_target,
)


pytestmark = pytest.mark.slow  # serve as a process against a stand-in Hub


@pytest.fixture
def world(tmp_path: Path) -> dict:
    site = tmp_path / "site"
    package_dir = install_release("0.5.12", site)
    standin, record, env = standin_env(tmp_path, site, package_dir)
    env.pop("HF_HUB_OFFLINE")
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    args = ["--python", str(standin), "--model", str(write_target(tmp_path / "target")), "--drafter", "compressed"]
    return {"site": site, "record": record, "env": env, "args": args, "repo": tmp_path / "repo",
            "snapshot": tmp_path / "hf" / "hub" / ("models--" + HUB_REPO.replace("/", "--")) / "snapshots" / COMMIT}


def run(world: dict, hub: StandInHub, *extra: str):
    return serve([*world["args"], *extra], {**world["env"], "HF_ENDPOINT": hub.endpoint})


def test_dry_run_validates_a_hub_drafter_without_downloading_its_weights(world: dict) -> None:
    write_drafter(world["repo"] / "compressed")
    with StandInHub(HUB_REPO, world["repo"]) as hub:
        done = run(world, hub, "--dry-run", "--json")

    assert done.returncode == 0, done.stderr
    argv = json.loads(done.stdout)["argv"]
    assert argv[argv.index("--speculative-draft-model-path") + 1] == str(world["snapshot"] / "compressed")
    assert hub.full_downloads("model.safetensors") == []
    assert [r.range for r in hub.requests if r.path.endswith("model.safetensors")] == ["bytes=0-100000"]
    assert not (world["snapshot"] / "compressed" / "model.safetensors").exists()


def test_wrong_hub_drafter_fails_before_its_weights_are_downloaded(world: dict) -> None:
    write_drafter(world["repo"] / "compressed", config=drafter_config(hidden_size=4096))
    untouched = tree_digest(world["site"])
    with StandInHub(HUB_REPO, world["repo"]) as hub:
        done = run(world, hub)

    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert "`hidden_size`" in done.stderr and "Found 4096; expected 5120" in done.stderr
    assert hub.full_downloads("model.safetensors") == []
    assert tree_digest(world["site"]) == untouched and not world["record"].exists()


@pytest.mark.parametrize("header", [b'{"d2t": [1, 2, 3]}', b"[]", b'{"d2t": "x"}', b"[" * 50_000])
def test_malformed_header_on_the_hub_is_bad_input_naming_the_file(world: dict, header: bytes) -> None:
    drafter = write_drafter(world["repo"] / "compressed")
    write_header(drafter / "model.safetensors", header)
    with StandInHub(HUB_REPO, world["repo"]) as hub:
        done = run(world, hub)

    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert f"resolve/{COMMIT}/compressed/model.safetensors" in done.stderr
    assert "internal error" not in done.stderr and hub.full_downloads("model.safetensors") == []


def test_hub_drafter_is_downloaded_then_launched_and_later_served_from_the_cache(world: dict) -> None:
    write_drafter(world["repo"] / "compressed")
    write_drafter(world["repo"] / "full", "full")
    with StandInHub(HUB_REPO, world["repo"]) as hub:
        done = run(world, hub)
        fetched = len(hub.requests)
        offline = serve(world["args"], {**world["env"], "HF_ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": "1"})

    assert done.returncode == 0 and offline.returncode == 0, done.stderr + offline.stderr
    argv = json.loads(world["record"].read_text())["argv"]
    drafter = Path(argv[argv.index("--speculative-draft-model-path") + 1])
    assert drafter == world["snapshot"] / "compressed" and (drafter / "model.safetensors").is_file()
    assert len(hub.full_downloads("compressed/model.safetensors")) == 1
    assert hub.full_downloads("full/model.safetensors") == []  # only the variant asked for
    assert len(hub.requests) == fetched  # offline: not one request


def test_sharded_hub_drafter_is_validated_through_its_index(world: dict) -> None:
    write_sharded(world["repo"] / "compressed")
    with StandInHub(HUB_REPO, world["repo"]) as hub:
        dry = run(world, hub, "--dry-run")
        assert hub.full_downloads(".safetensors") == []
        done = run(world, hub)

    assert dry.returncode == 0 and done.returncode == 0, dry.stderr + done.stderr
    assert "reduced vocabulary 32000" in dry.stdout
    assert len(hub.full_downloads(".safetensors")) == 2


def test_variant_missing_on_the_hub_says_so(world: dict) -> None:
    write_drafter(world["repo"] / "full", "full")
    with StandInHub(HUB_REPO, world["repo"]) as hub:
        done = run(world, hub)

    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert f"Drafter variant 'compressed' is missing or incomplete in {HUB_REPO}" in done.stderr


def test_unknown_repo_on_the_hub_is_refused(world: dict) -> None:
    write_drafter(world["repo"] / "compressed")
    with StandInHub("someone/else", world["repo"]) as hub:
        done = run(world, hub)

    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert "the Hub refused access" in done.stderr


def tree_answer(body: bytes):
    """A Hub whose file listing (what snapshot_download reads) is ``body``."""
    def hostile(handler) -> bool:
        if "/tree/" not in handler.path:
            return False
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        return True
    return hostile


def hang_up_on_ranges(handler) -> bool:
    """A Hub that drops the connection when the weights' header is read by range."""
    if handler.headers.get("Range") is None:
        return False
    handler.connection.shutdown(2)
    return True


# huggingface_hub reads the Hub's answers trusting their shape; a mirror or proxy at HF_ENDPOINT can
# answer anything, and each of these was exit 70 (JSONDecodeError, ValueError of Python's digit limit,
# TypeError, RecursionError raised inside the library, httpx2's RemoteProtocolError let through).
@pytest.mark.parametrize("hostile, said", [
    (tree_answer(b"<html>Service Unavailable</html>"), "JSONDecodeError"),
    (tree_answer(b"[" + b"9" * 5000 + b"]"), "more than 4,300 digits"),
    (tree_answer(b"[1, 2, 3]"), "TypeError"),
    (tree_answer(b"[" * 100_000 + b"]" * 100_000), "RecursionError"),
    (hang_up_on_ranges, "Server disconnected"),
], ids=["html", "long-number", "wrong-type", "deep", "hang-up"])
def test_a_hub_answer_huggingface_hub_cannot_read_is_bad_input_not_a_crash(world: dict, hostile, said: str) -> None:
    write_drafter(world["repo"] / "compressed")
    with StandInHub(HUB_REPO, world["repo"], hostile=hostile) as hub:
        done = run(world, hub)

    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert f"Downloading drafter 'compressed' from {HUB_REPO} failed" in done.stderr and said in done.stderr
    assert "internal error" not in done.stderr and not world["record"].exists()


def test_a_hub_header_of_long_sizes_is_refused_long_before_the_library_would_have_read_it(world: dict) -> None:
    # huggingface_hub's header parser multiplies out every shape: 1.7 MB of 4299-digit sizes took
    # it 7 s, deaf to Ctrl-C, and the whole 25 MB it accepts about half an hour. Ours reads this
    # 15 MB header in about a second; the deadline proves "not the library's way", not a speed.
    big = "9" * 4299
    header = ('{"d2t": {"dtype": "I64", "shape": [' + ",".join([big] * 3600) + '], "data_offsets": [0, 8]}}').encode()
    write_header(write_drafter(world["repo"] / "compressed") / "model.safetensors", header, b"\0" * 8)
    with StandInHub(HUB_REPO, world["repo"]) as hub:
        started = time.monotonic()
        done = run(world, hub, "--dry-run")
        took = time.monotonic() - started
    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert f"resolve/{COMMIT}/compressed/model.safetensors" in done.stderr and took < 30


HUB_FUZZ = """
import json, os, random, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from support.hub_standin import COMMIT, StandInHub
from support.serve_fixtures import HUB_REPO
weights = Path({weights!r})
pristine = weights.read_bytes()
length = int.from_bytes(pristine[:8], "little")
with StandInHub(HUB_REPO, weights.parent.parent) as hub:
    os.environ["HF_ENDPOINT"] = hub.endpoint  # before huggingface_hub is imported
    from eagle3_patch.errors import BadInput
    from eagle3_patch.serve.hub import _remote_header
    rng, outcomes = random.Random(3), {{"ok": 0, "refused": 0}}
    for _ in range(200):
        corrupt = bytearray(pristine[: 8 + length + 64])
        for _ in range(rng.randint(1, 4)):
            corrupt[rng.randrange(0, 8 + length)] = rng.randrange(256)
        weights.write_bytes(bytes(corrupt))
        try:
            _remote_header(HUB_REPO, "compressed/model.safetensors", COMMIT)
            outcomes["ok"] += 1
        except BadInput as exc:
            assert "compressed/model.safetensors" in exc.what, exc.what
            outcomes["refused"] += 1
print(json.dumps(outcomes))
"""


def test_randomly_corrupted_headers_on_the_hub_are_refused_never_crash(tmp_path: Path) -> None:
    drafter = write_drafter(tmp_path / "repo" / "compressed")
    code = HUB_FUZZ.format(tests=str(TESTS), weights=str(drafter / "model.safetensors"))

    done = run_python(code, {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"})

    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["refused"] > 100


@pytest.mark.parametrize("repo", ["a b/c", "x/y/z", "../nope"])
def test_drafter_repo_that_is_neither_folder_nor_repo_id_is_bad_input(world: dict, repo: str) -> None:
    done = serve([*world["args"], "--drafter-repo", repo, "--dry-run"], world["env"])

    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert f"--drafter-repo '{repo}' is neither a local folder nor a valid Hub repo id" in done.stderr


@pytest.mark.parametrize("model", ["a b/c", "org/", "Qwen/Qwen3.6-27B:x"])
def test_target_that_is_neither_folder_nor_repo_id_is_bad_input(world: dict, model: str, tmp_path: Path) -> None:
    drafter = write_drafter(tmp_path / "local-drafter")
    args = [*world["args"][:2], "--model", model, "--drafter", str(drafter), "--dry-run"]

    done = serve(args, world["env"])

    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert f"Target model '{model}' is not a valid Hub repo id" in done.stderr


def test_a_hub_drafter_whose_data_lies_past_its_end_is_refused_once_downloaded_never_launched(world: dict) -> None:
    # The ranged read gives the header without the file's size; the whole file is checked
    # once downloaded, before SGLang (and its 55 GB target) is started.
    weights = write_drafter(world["repo"] / "compressed") / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    with StandInHub(HUB_REPO, world["repo"]) as hub:
        done = run(world, hub)

    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert "compressed/model.safetensors: tensor t2d" in done.stderr and "past the end of the file" in done.stderr
    assert not world["record"].exists()  # never launched
