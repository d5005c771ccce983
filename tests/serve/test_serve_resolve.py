"""--drafter resolution: a folder, a variant in a local repo folder, or a variant from the Hub cache.

Hub cases run in a fresh interpreter with HF_HOME pointing at a cache built in
the real layout and HF_HUB_OFFLINE=1: huggingface_hub reads both at import, and
no test may reach the Hub.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eagle3_patch.errors import BadInput
from eagle3_patch.serve.drafter import download_command, local_drafter as resolve_drafter

from support.marks import first_fast
from support.serve_fixtures import HUB_REPO, base_env, hub_snapshot, run_python, serve, write_drafter, write_target


RESOLVE = """
import json, sys
from eagle3_patch.errors import BadInput
from eagle3_patch.serve.drafter import local_drafter
from eagle3_patch.serve.validate import check_drafter, target_text_config
try:
    target, skipped = target_text_config({model!r})
    folder = local_drafter({drafter!r}, {repo!r})
    if folder is None:
        from eagle3_patch.serve.hub import fetch_hub_drafter
        report = fetch_hub_drafter({repo!r}, {drafter!r}, target, skipped)
    else:
        report = check_drafter(folder, target, skipped)
    print(json.dumps({{"path": str(report.path), "notes": report.notes, "modules": sorted(sys.modules)}}))
except BadInput as exc:
    print(json.dumps({{"error": exc.message, "modules": sorted(sys.modules)}}))
"""


def resolve_in_fresh_process(drafter: str, repo: str, model: str, env: dict[str, str], cwd: Path) -> dict:
    done = run_python(RESOLVE.format(drafter=drafter, repo=repo, model=model), env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_folder_with_config_is_used_as_is(tmp_path: Path) -> None:
    folder = write_drafter(tmp_path / "my drafter")

    assert resolve_drafter(str(folder), "unused/repo") == folder.resolve()


def test_a_local_folder_named_like_a_variant_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_drafter(tmp_path / "compressed")
    monkeypatch.chdir(tmp_path)

    assert resolve_drafter("compressed", HUB_REPO) == (tmp_path / "compressed").resolve()


@pytest.mark.parametrize("variant", ["full", "compressed"])
def test_variant_from_a_local_repo_folder(variant: str, tmp_path: Path) -> None:
    repo = tmp_path / "Qwen3.6-27B-PRISM-EAGLE3"
    write_drafter(repo / "full", "full")
    write_drafter(repo / "compressed", "compressed")

    assert resolve_drafter(variant, str(repo)) == (repo / variant).resolve()


def test_local_repo_folder_without_the_variant(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_drafter(repo / "full", "full")

    with pytest.raises(BadInput) as excinfo:
        resolve_drafter("compressed", str(repo))

    assert f"{repo / 'compressed' / 'config.json'} does not exist" in excinfo.value.message


def test_folder_without_config_json(tmp_path: Path) -> None:
    (tmp_path / "repo-root").mkdir()

    with pytest.raises(BadInput) as excinfo:
        resolve_drafter(str(tmp_path / "repo-root"), HUB_REPO)

    assert "has no config.json" in excinfo.value.message


def test_neither_folder_nor_variant(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as excinfo:
        resolve_drafter(str(tmp_path / "nope"), HUB_REPO)

    assert "neither a folder nor a known variant" in excinfo.value.message
    assert "full, compressed" in excinfo.value.message


@pytest.mark.parametrize("option", first_fast("--drafter", "--drafter-repo", "--model"))
def test_a_home_no_one_has_is_a_path_that_is_not_there_not_an_internal_error(option: str, site, tmp_path: Path) -> None:
    # pathlib raised RuntimeError for "~user" without such a user, and for "~" under a UID without
    # a passwd entry and no HOME (containers): exit 70.
    args = {"--drafter": str(write_drafter(tmp_path / "d")), "--model": str(write_target(tmp_path / "m"))}
    if option == "--drafter-repo":
        args["--drafter"] = "compressed"
    args[option] = "~no-such-user-here/x"
    done = site("0.5.21").invoke("serve", *(word for pair in args.items() for word in pair), "--dry-run")
    assert done.returncode == 8, done.stderr
    assert "~no-such-user-here/x" in done.stderr and "internal error" not in done.stderr


def test_variant_from_the_hub_cache_offline(tmp_path: Path) -> None:
    snapshot = hub_snapshot(tmp_path / "hf", HUB_REPO)
    write_drafter(snapshot / "compressed", "compressed")
    write_target(hub_snapshot(tmp_path / "hf", "Qwen/Qwen3.6-27B"))
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}

    result = resolve_in_fresh_process("compressed", HUB_REPO, "Qwen/Qwen3.6-27B", env, tmp_path)

    assert Path(result["path"]) == snapshot / "compressed"
    assert any("matches the target" in note for note in result["notes"])


@pytest.mark.parametrize("cached", first_fast("nothing", "other-variant"))
def test_offline_and_not_cached_says_how_to_download(cached: str, tmp_path: Path) -> None:
    if cached == "other-variant":
        write_drafter(hub_snapshot(tmp_path / "hf", HUB_REPO) / "full", "full")
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    model = str(write_target(tmp_path / "model"))  # on disk: the drafter is what is missing

    result = resolve_in_fresh_process("compressed", HUB_REPO, model, env, tmp_path)

    message = result["error"]
    assert f"Drafter 'compressed' of {HUB_REPO} is not in the local Hugging Face cache" in message
    assert str(tmp_path / "hf" / "hub") in message and "HF_HUB_OFFLINE is set" in message
    assert f"hf download {HUB_REPO} --include 'compressed/*'" in message


def test_local_drafter_and_model_never_import_huggingface_hub(tmp_path: Path) -> None:
    drafter = write_drafter(tmp_path / "compressed")
    model = write_target(tmp_path / "model")

    result = resolve_in_fresh_process(str(drafter), HUB_REPO, str(model), {"HF_HUB_OFFLINE": "1"}, tmp_path)

    assert "path" in result
    assert not [m for m in result["modules"] if m.split(".")[0] == "huggingface_hub"]


TARGET_AT = """
import json
from eagle3_patch.serve.validate import target_text_config
target, why = target_text_config("Qwen/Qwen3.6-27B", {revision!r})
print(json.dumps({{"hidden": target and target.hidden_size, "source": target and str(target.source), "why": why}}))
"""


def target_in_fresh_process(hf_home: Path, revision: str | None) -> dict:
    done = run_python(TARGET_AT.format(revision=revision), {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # three fresh processes; the revision spelling test below proves it through serve
def test_hub_target_config_follows_the_revision_sglang_will_load(tmp_path: Path) -> None:
    hf_home = tmp_path / "hf"
    write_target(hub_snapshot(hf_home, "Qwen/Qwen3.6-27B", "a" * 40))
    other = hub_snapshot(hf_home, "Qwen/Qwen3.6-27B", "b" * 40)
    write_target(other, hidden=4096)
    (other.parent.parent / "refs" / "main").write_text("a" * 40)
    (other.parent.parent / "refs" / "v2").write_text("b" * 40)

    assert target_in_fresh_process(hf_home, None)["hidden"] == 5120
    at_v2 = target_in_fresh_process(hf_home, "v2")
    assert at_v2["hidden"] == 4096 and at_v2["source"] == str(other / "config.json")
    assert target_in_fresh_process(hf_home, "b" * 40)["hidden"] == 4096


def test_hub_target_no_exist_marker_is_reported_as_such(tmp_path: Path) -> None:
    hf_home = tmp_path / "hf"
    snapshot = hub_snapshot(hf_home, "Qwen/Qwen3.6-27B", "c" * 40)
    marker = snapshot.parent.parent / ".no_exist" / ("c" * 40) / "config.json"
    marker.parent.mkdir(parents=True)
    marker.touch()

    result = target_in_fresh_process(hf_home, None)

    assert result["hidden"] is None and ".no_exist" in result["why"]


@pytest.mark.parametrize(("version", "cli"), [("0.33.5", "huggingface-cli download"), ("1.2.0", "hf download")])
def test_download_command_matches_the_installed_hub_cli(version: str, cli: str) -> None:
    assert download_command(HUB_REPO, "full", version) == f"{cli} {HUB_REPO} --include 'full/*'"


@pytest.mark.parametrize("spelling", first_fast(["--revision", "v2"], ["--revisio", "v2"], ["--rev=v2"]))
def test_the_drafter_is_checked_against_the_revision_sglang_will_load_however_it_is_spelled(
        spelling: list[str], site, tmp_path: Path) -> None:
    installed = site("0.5.23")
    hf_home = tmp_path / "hf"
    write_target(hub_snapshot(hf_home, "Qwen/Qwen3.6-27B", "a" * 40))  # main: hidden 5120, as the drafter
    other = hub_snapshot(hf_home, "Qwen/Qwen3.6-27B", "b" * 40)
    write_target(other, hidden=4096)
    (other.parent.parent / "refs" / "main").write_text("a" * 40)
    (other.parent.parent / "refs" / "v2").write_text("b" * 40)
    drafter = write_drafter(tmp_path / "compressed")

    done = serve(["--model", "Qwen/Qwen3.6-27B", "--drafter", str(drafter), "--dry-run", "--", *spelling],
                 base_env(HF_HOME=str(hf_home), PYTHONPATH=str(installed.root)))

    assert done.returncode == 8, done.stderr
    assert "field `hidden_size`" in done.stderr and str(other / "config.json") in done.stderr


@pytest.mark.parametrize("revision", first_fast([], ["--revision", "v3"]), ids=["main", "revision-not-cached"])
def test_offline_with_the_hub_target_not_cached_is_refused_before_launch(revision: list[str], site,
                                                                        tmp_path: Path) -> None:
    installed = site("0.5.23")
    hf_home = tmp_path / "hf"
    if revision:  # main is cached, the revision asked for is not
        write_target(hub_snapshot(hf_home, "Qwen/Qwen3.6-27B", "a" * 40))
    drafter = write_drafter(tmp_path / "compressed")

    done = serve(["--model", "Qwen/Qwen3.6-27B", "--drafter", str(drafter), "--dry-run", "--", *revision],
                 base_env(HF_HOME=str(hf_home), PYTHONPATH=str(installed.root)))

    assert done.returncode == 8, done.stdout + done.stderr
    at = "Qwen/Qwen3.6-27B@v3" if revision else "Qwen/Qwen3.6-27B"
    assert f"Target model {at} is not in the local Hugging Face cache" in done.stderr
    assert "HF_HUB_OFFLINE is set" in done.stderr and "will download" not in done.stderr
    assert "hf download Qwen/Qwen3.6-27B" + (" --revision v3" if revision else "") in done.stderr
