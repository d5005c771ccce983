"""serve's own options before `--`, SGLang's after: typos never launch, the drafter is never
replaced behind validation's back, secrets never reach the terminal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eagle3_patch.text.masking import MASK

from support.marks import first_fast
from support.releases import install_release
from support.serve_fixtures import serve, standin_env, tree_digest, write_drafter, write_target



@pytest.fixture
def world(tmp_path: Path) -> dict:
    """A real SGLang 0.5.12 site, the recording stand-in interpreter, a target and a drafter."""
    site = tmp_path / "site"
    package_dir = install_release("0.5.12", site)
    standin, record, env = standin_env(tmp_path, site, package_dir)
    model, drafter = write_target(tmp_path / "Qwen3.6-27B"), write_drafter(tmp_path / "compressed")
    args = ["--python", str(standin), "--model", str(model), "--drafter", str(drafter)]
    return {"site": site, "record": record, "env": env, "args": args}


@pytest.mark.parametrize("typo", first_fast(["--dryrun", "--no-aply"], ["--dry_run"], ["-p", "31000"], ["--tp", "2"]))
def test_unknown_option_before_dashes_is_a_usage_error_and_nothing_is_patched(world: dict, typo: list[str]) -> None:
    untouched = tree_digest(world["site"])

    done = serve([*world["args"], *typo], world["env"])

    assert done.returncode == 2, done.stderr
    assert "SGLang's own options go after `--`" in done.stderr
    assert "Traceback" not in done.stderr
    assert tree_digest(world["site"]) == untouched and not world["record"].exists()


def test_typo_of_dry_run_gets_a_did_you_mean(world: dict) -> None:
    done = serve([*world["args"], "--dryrun"], world["env"])

    assert done.returncode == 2 and "Did you mean '--dry-run'?" in done.stderr


def test_positional_argument_before_dashes_is_a_usage_error(world: dict) -> None:
    untouched = tree_digest(world["site"])

    done = serve([*world["args"], "launch", "--", "--tp", "2"], world["env"])

    assert done.returncode == 2, done.stderr
    assert "Unexpected argument launch before `--`" in done.stderr and "-- launch" in done.stderr
    assert tree_digest(world["site"]) == untouched and not world["record"].exists()


def test_options_after_dashes_still_reach_sglang_even_when_they_look_like_ours(world: dict) -> None:
    done = serve([*world["args"], "--dry-run", "--json", "--", "--dry-run", "--tp", "2"], world["env"])

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["argv"][-3:] == ["--dry-run", "--tp", "2"]


@pytest.mark.parametrize(("flag", "option"), [
    *first_fast((["--speculative-draft-model-path", "/other"], "--drafter"),
                (["--speculative-draft-model-path=/other"], "--drafter"),
                (["--speculative-draft-model", "/other"], "--drafter"),
                (["--speculative-draft-model-p", "/other"], "--drafter")),
    *first_fast((["--model-path", "/other"], "--model"),
                (["--model=/other"], "--model"),
                (["--model-pat", "/other"], "--model")),
])
def test_validated_path_after_dashes_is_refused_with_the_option_to_use(world: dict, flag: list[str],
                                                                       option: str) -> None:
    untouched = tree_digest(world["site"])

    done = serve([*world["args"], "--", *flag], world["env"])

    assert done.returncode == 2, done.stderr
    assert f"would replace the {option[2:]} serve validated" in done.stderr
    assert f"Pass it as {option} PATH instead" in done.stderr
    assert tree_digest(world["site"]) == untouched and not world["record"].exists()


def test_other_draft_model_and_model_flags_still_pass(world: dict) -> None:
    done = serve([*world["args"], "--dry-run", "--json", "--", "--speculative-draft-model-revision", "main",
                  "--model-impl", "sglang", "--model-loader-extra-config", "{}"], world["env"])

    assert done.returncode == 0, done.stderr


SECRETS = ["--api-key", "sk-one", "--admin-api-key=sk-two", "--hf-token", "hf_three", "--api-ke", "sk-four",
           "--ssl-keyfile-password", "pw-five", "--ssl-keyfile-pass=pw-six", "--apikey", "sk-seven",
           "--hfToken=hf_eight"]
VISIBLE = ["--ssl-keyfile", "/tls/k.pem", "--max-total-tokens", "9000", "--speculative-num-draft-tokens", "5",
           "--kt-max-deferred-experts-per-token", "2", "--tokenizer-path", "/tok"]


def test_exec_line_and_dry_run_text_mask_secrets_and_keep_lookalikes(world: dict) -> None:
    user = ["--", *SECRETS, *VISIBLE]

    dry = serve([*world["args"], "--dry-run", *user], world["env"])
    launch = serve([*world["args"], *user], world["env"])
    as_json = serve([*world["args"], "--dry-run", "--json", *user], world["env"])

    assert dry.returncode == 0 and launch.returncode == 0, dry.stderr + launch.stderr
    exec_line = next(line for line in launch.stderr.splitlines() if "exec:" in line)
    for shown in (dry.stdout, exec_line):
        assert not any(secret in shown for secret in ("sk-one", "sk-two", "hf_three", "sk-four", "pw-five", "pw-six",
                                                 "sk-seven", "hf_eight"))
        assert f"--api-key '{MASK}'" in shown and f"'--admin-api-key={MASK}'" in shown
        assert f"--ssl-keyfile-password '{MASK}' '--ssl-keyfile-pass={MASK}'" in shown
        assert f"--apikey '{MASK}' '--hfToken={MASK}'" in shown
        assert ("--ssl-keyfile /tls/k.pem --max-total-tokens 9000 --speculative-num-draft-tokens 5 "
                "--kt-max-deferred-experts-per-token 2 --tokenizer-path /tok") in shown
    # The JSON plan is the exact argv (README: "--dry-run --json keeps secrets"); SGLang got them too.
    assert json.loads(as_json.stdout)["argv"][-len(SECRETS + VISIBLE):] == SECRETS + VISIBLE
    assert json.loads(world["record"].read_text())["argv"][-len(SECRETS + VISIBLE):] == SECRETS + VISIBLE
