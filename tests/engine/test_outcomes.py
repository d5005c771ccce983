"""What an operation did is one enum: its words, its summaries, and check's own failure."""

from __future__ import annotations

import json

import pytest

from eagle3_patch.engine.status import check
from eagle3_patch.engine.result import Result
from eagle3_patch.ui import render
from eagle3_patch.errors import CheckFailed
from eagle3_patch.site.locate import locate_sglang
from eagle3_patch.patch.states import Analysis, Outcome, State

from support import builders
from support.cli import invoke_main



SGLANG = builders.install("/nonexistent/sglang")
# Scripts read these words from `--json`: they are an interface, not an implementation detail.
WORDS = {"", "patched", "repaired", "already-patched", "native", "would-patch", "reverted",
         "nothing-to-revert", "removed-after-uninstall", "refused"}


def test_outcome_words_are_the_ones_json_has_always_said():
    assert {outcome.value for outcome in Outcome} == WORDS


@pytest.mark.parametrize("outcome", [o for o in Outcome if o not in (Outcome.OBSERVED, Outcome.REFUSED)])
def test_every_outcome_an_operation_ends_in_has_its_own_summary(outcome):
    result = Result("apply", outcome, SGLANG, Analysis(State.PATCHED, ()), {},
                           changed=("/x/qwen3_5.py",))
    lines = render.human(result).splitlines()
    assert lines[0] not in {o.value for o in Outcome} and lines[0].endswith((".", ":"))
    assert lines[1] == ("  removed /x/qwen3_5.py" if outcome is Outcome.REMOVED_AFTER_UNINSTALL
                        else "  wrote /x/qwen3_5.py")
    assert json.loads(json.dumps(render.to_json(result)))["outcome"] == outcome.value


def test_check_raises_its_own_failure_carrying_the_state_it_found(site):
    s = site("0.5.21")
    with pytest.raises(CheckFailed) as failed:
        check(locate_sglang(sglang_dir=s.package))
    assert failed.value.result.state is State.UNPATCHED
    assert failed.value.result.outcome is Outcome.OBSERVED
    assert "eagle3-patch" in failed.value.fix and "apply" in failed.value.fix


def test_check_in_the_cli_still_prints_the_state_then_fails_with_1(site):
    s = site("0.5.21")
    exited = invoke_main("check", "--sglang-dir", str(s.package))
    assert exited.exit_code == 1
    assert "state: unpatched" in exited.stdout and "EAGLE-3 capture does not work" in exited.stderr
    as_json = json.loads(invoke_main("check", "--json", "--sglang-dir", str(s.package)).stdout)
    assert as_json["state"] == "unpatched" and as_json["outcome"] == ""
