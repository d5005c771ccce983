"""Every release in the matrix, end to end through the CLI, as the CI idempotency check."""

from __future__ import annotations

import json

import pytest

from eagle3_patch.patch.hooks import HOOKS
from eagle3_patch.patch.transform import add_hooks

from support.reference import whole_class_append
from support.releases import BROKEN, NATIVE, RELEASES, UNSUPPORTED, release_file
from support.standins import capture_outcome


pytestmark = pytest.mark.slow  # every release in the matrix, end to end

TARGETS = ("qwen3_5.py", "qwen3_5_text.py")


def _present(site):
    return [name for name in TARGETS if site.file(name).exists()]


@pytest.mark.parametrize("version", RELEASES)
def test_status_reports_the_state_this_release_is_in(site, version):
    s = site(version)
    result = s.run("status", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    expected = ("unsupported" if version in UNSUPPORTED else
                "native" if version in NATIVE else "unpatched")
    assert report["state"] == expected
    assert report["sglang_version"] == version
    assert report["sglang_dir"] == str(s.package)
    assert report["capture_works"] is (version in NATIVE)


@pytest.mark.parametrize("version", BROKEN)
def test_apply_twice_check_revert_check_round_trip(site, version):
    s = site(version)
    originals = {name: s.read(name) for name in _present(s)}
    assert s.run("check").returncode == 1

    first = s.run("apply")
    assert first.returncode == 0, first.stderr
    patched = {name: s.read(name) for name in originals}
    assert all(patched[n] != originals[n] for n in originals)
    assert all(s.file(n + ".eagle3-bak").read_bytes() == originals[n] for n in originals)

    second = s.run("apply")
    assert second.returncode == 0 and "Already patched" in second.stdout
    assert {name: s.read(name) for name in originals} == patched

    assert s.run("check").returncode == 0
    reverted = s.run("revert")
    assert reverted.returncode == 0, reverted.stderr
    assert {name: s.read(name) for name in originals} == originals
    assert not list(s.models.glob("*.eagle3-bak*"))
    assert s.run("check").returncode == 1


@pytest.mark.parametrize("version", BROKEN)
def test_capture_flags_land_on_layers_2_32_61_only_after_apply(site, version):
    s = site(version)
    before = capture_outcome(s.models)
    assert not all(o.works for o in before.values()), before
    assert s.run("apply").returncode == 0
    after = capture_outcome(s.models)
    assert after and all(o.works for o in after.values()), after


@pytest.mark.parametrize("version", sorted(NATIVE))
def test_native_release_captures_without_patch_and_apply_writes_nothing(site, version):
    s = site(version)
    before = {p.name: p.read_bytes() for p in s.models.iterdir()}
    outcome = capture_outcome(s.models)
    assert outcome and all(o.works for o in outcome.values()), outcome
    result = s.run("apply")
    assert result.returncode == 0 and "needs no patch" in result.stdout
    assert {p.name: p.read_bytes() for p in s.models.iterdir()} == before


@pytest.mark.parametrize("version", sorted(UNSUPPORTED))
def test_unsupported_release_is_refused_untouched(site, version):
    s = site(version)
    before = {p.name: p.read_bytes() for p in s.models.iterdir()}
    result = s.run("apply")
    assert result.returncode == 4
    assert f"SGLang {version}" in result.stderr and "0.5.11" in result.stderr
    assert "Traceback" not in result.stderr
    assert {p.name: p.read_bytes() for p in s.models.iterdir()} == before


@pytest.mark.parametrize("version", BROKEN)
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_appending_to_a_class_tail_equals_appending_to_the_whole_class(version, newline):
    for name in TARGETS:
        try:
            source = release_file(version, f"sglang/srt/models/{name}").decode("utf-8")
        except KeyError:  # qwen3_5_text.py from 0.5.17
            continue
        source = source.replace("\n", newline)
        hooks = [hook for hook in HOOKS if hook.file == name]
        assert add_hooks(source, hooks) == whole_class_append(source, hooks)
