"""Launch flags decided from each real release's source, without importing or touching it."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version

from eagle3_patch.site.locate import locate_sglang
from eagle3_patch.serve.dialect import RADIX_FLAG, SCHEDULER_FLAG, SPEC_V2_ENV, detect_dialect
from eagle3_patch.serve.plan import build_plan

from support.marks import first_fast
from support.releases import RELEASES, install_release
from support.serve_fixtures import tree_digest



def expected_dialect(version: str) -> tuple[str, dict[str, str]]:
    """The landscape table: old flag and V2 env through 0.5.13.x, new flag and no env after."""
    if Version(version) < Version("0.5.14"):
        # 0.5.9-0.5.10 still read the variable (default off); the validated config wants V2 on.
        return SCHEDULER_FLAG, {SPEC_V2_ENV: "1"}
    return RADIX_FLAG, {}


@pytest.mark.parametrize("version", first_fast(*RELEASES), ids=RELEASES)
def test_dialect_per_release_from_source_alone(version: str, tmp_path: Path) -> None:
    package_dir = install_release(version, tmp_path / "site")
    before = tree_digest(tmp_path / "site")

    dialect = detect_dialect(package_dir, None)

    flag, env = expected_dialect(version)
    assert (dialect.strategy_flag, dialect.env) == (flag, env)
    for evidence in (dialect.strategy_evidence, dialect.spec_v2_evidence):
        named = evidence.split()[0]
        assert (tmp_path / "site" / named).is_file(), evidence
    assert detect_dialect(package_dir, locate_sglang(sglang_dir=package_dir).version) == dialect
    plan = build_plan("/venv/bin/python", "Qwen/Qwen3.6-27B", "/d/compressed", dialect, [])
    assert plan.argv[plan.argv.index(flag) + 1] == "extra_buffer"
    assert ({RADIX_FLAG, SCHEDULER_FLAG} - {flag}).isdisjoint(plan.argv)
    assert plan.env == env
    assert tree_digest(tmp_path / "site") == before


def test_field_generated_flag_is_found_under_arg_groups_fields(tmp_path: Path) -> None:
    package_dir = install_release("0.5.20", tmp_path / "site")
    assert "mamba-radix-cache-strategy" not in (package_dir / "srt" / "server_args.py").read_text()

    dialect = detect_dialect(package_dir, None)

    assert dialect.strategy_flag == RADIX_FLAG
    assert dialect.strategy_evidence.startswith("sglang/srt/arg_groups/fields/")


def test_source_wins_over_a_misleading_version(tmp_path: Path) -> None:
    # A fork or dev build: 0.5.12's code under a version string from after the rename.
    package_dir = install_release("0.5.12", tmp_path / "site")

    dialect = detect_dialect(package_dir, Version("0.5.20.dev3"))

    assert (dialect.strategy_flag, dialect.env) == (SCHEDULER_FLAG, {SPEC_V2_ENV: "1"})


def test_removed_env_var_is_not_set_where_sglang_only_warns(tmp_path: Path) -> None:
    package_dir = install_release("0.5.14", tmp_path / "site")

    dialect = detect_dialect(package_dir, None)

    assert not dialect.spec_v2
    assert "speculative_hook.py only reports it as removed" in dialect.spec_v2_evidence


@pytest.mark.parametrize(
    ("version", "flag", "env"),
    [
        ("0.5.13", SCHEDULER_FLAG, {SPEC_V2_ENV: "1"}),
        ("0.5.14", RADIX_FLAG, {}),
        ("0.5.14.dev0", RADIX_FLAG, {}),
        (None, RADIX_FLAG, {}),
    ],
    ids=["0.5.13", "0.5.14", "0.5.14.dev0", "unknown"],
)
def test_version_decides_only_when_the_source_is_silent(
    version: str | None, flag: str, env: dict[str, str], tmp_path: Path
) -> None:
    package_dir = tmp_path / "sglang"
    (package_dir / "srt").mkdir(parents=True)

    dialect = detect_dialect(package_dir, Version(version) if version else None)

    assert (dialect.strategy_flag, dialect.env) == (flag, env)
    assert "no definition" in dialect.strategy_evidence
