"""SGLang's real classes under `eagle3-patch run`, as a user who cannot write site-packages.

The cached real-SGLang venv's site-packages is bind-mounted read-only into the
session's user_env (the venv itself lives under /root, which others cannot
read), beside a venv-shaped folder whose interpreter is Debian's
/usr/bin/python3.11 (same 3.11 ABI); eagle3-patch runs from user_env's
read-only view of this checkout (see userenv). Everything — eagle3-patch's own
analysis and SGLang's processes — runs as the unprivileged user e3i7 with a
HOME it cannot write. The probe builds the real Qwen3_5(Moe)ForConditionalGeneration
on the CPU, calls set_eagle3_layers_to_capture as SGLang's model runner does,
and reads the flags off the real decoder layers: in the process itself, in a
multiprocessing spawn child, and for the classes SGLang's model registry resolves.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from eagle3_patch.errors import EXIT_STALE

from support import realenv
from support.paths import TESTS
from support.realclasses import (
    DRAFTER_IDS, EXPECTED, PATCHED, PROBE, PROBE_FILES, WRAPPERS, make_pristine, wheel_models,
)
from support.userenv import Mounts, UserEnv, venv_shape

pytestmark = pytest.mark.slow

USER = "e3i7"


def _snapshot(models: Path) -> dict[str, bytes]:
    return {str(p.relative_to(models)): p.read_bytes() for p in sorted(models.rglob("*")) if p.is_file()}


class ReadOnlyWorld(Mounts):
    """The mounts and folders of one test module, and the commands run as the user."""

    def __init__(self, user_env: UserEnv, real_site: Path) -> None:
        super().__init__()
        self.user_env = user_env
        self.root = user_env.folder("e3i7-inmemory-")
        self.sglang_python = venv_shape(self.root / "sglang-venv")
        self.site = self.root / "sglang-venv/lib/python3.11/site-packages"
        # eagle3-patch's own environment (this checkout's src and test venv), for the user too.
        self.tool_python = user_env.python
        self.probe = self.root / PROBE.relative_to(TESTS)
        # The probe imports its CPU bootstrap, free_port and report writer from the support
        # package: they travel to the user's folder with it, in the same folders.
        for name in PROBE_FILES:
            (self.root / name).parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            shutil.copy(TESTS / name, self.root / name)
            (self.root / name).chmod(0o644)
        self.before: dict[str, bytes] = {}
        self.mount(real_site, self.site)  # last: nothing after it can fail and leave it mounted

    @property
    def models(self) -> Path:
        return self.site / "sglang/srt/models"

    def as_user(self, *argv: str, env: dict[str, str] | None = None,
                timeout: int = 900) -> subprocess.CompletedProcess:
        base = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8", "HF_HUB_OFFLINE": "1"}
        return self.user_env.run(USER, *argv, env={**base, **(env or {})}, cwd=self.root,
                                 capture_output=True, text=True, timeout=timeout)

    def eagle3_patch(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return self.as_user(str(self.tool_python), "-m", "eagle3_patch", *args,
                            env=self.user_env.pythonpath(env or {}))

    def probe_args(self, *flags: str) -> list[str]:
        return [str(self.sglang_python), str(self.probe), "--ids", json.dumps(DRAFTER_IDS), *flags]


@pytest.fixture(scope="module")
def world(user_env):
    real_python = realenv.ensure_real_venv()
    real_site = next((real_python.parent.parent / "lib").glob("python3.*/site-packages"))
    real_models = real_site / "sglang/srt/models"
    # Hold the shared venv's lock throughout: another run's apply must not land mid-test.
    with realenv.models_lock():
        make_pristine(real_models, wheel_models())
        before = _snapshot(real_models)
        world = ReadOnlyWorld(user_env, real_site)
        world.before = before
        world.real_models = real_models
        try:
            yield world
        finally:
            world.unmount_all()
            shutil.rmtree(world.root, ignore_errors=True)
        after = _snapshot(real_models)
        assert after.keys() == before.keys(), sorted(after.keys() ^ before.keys())
        assert after == before, "a file under sglang/srt/models changed"


def _assert_flags_land(report: dict, models: Path) -> None:
    assert Path(report["sglang_file"]) == models / PATCHED
    for wrapper in WRAPPERS:
        for case, expected in EXPECTED.items():
            seen = report[wrapper][case]
            assert seen["flagged_before_call"] == [], (wrapper, case, seen)
            assert seen["flagged_layers"] == expected, (wrapper, case, seen)
            assert seen["capture_aux_hidden_states"] is True, (wrapper, case, seen)


def _run_probe(world: ReadOnlyWorld, *flags: str) -> dict:
    done = world.eagle3_patch("run", "--", *world.probe_args("--moe", *flags))
    assert done.returncode == 0, done.stderr[-6000:]
    assert "patched in memory" in done.stderr
    return json.loads(done.stdout)


def test_the_user_cannot_write_site_packages_and_status_says_in_memory_works(world):
    done = world.as_user(str(world.sglang_python), "-c",
                         f"import os; print(os.access({str(world.models)!r}, os.W_OK))")
    assert done.stdout.strip() == "False"
    status = world.eagle3_patch("status", "--json", "--python", str(world.sglang_python))
    report = json.loads(status.stdout)
    assert report["state"] == "unpatched" and report["in_memory_ok"] is True
    applied = world.eagle3_patch("apply", "--python", str(world.sglang_python))
    assert applied.returncode == 6


def test_flags_land_in_the_process_itself(world):
    report = _run_probe(world)
    _assert_flags_land(report, world.models)
    # A failure inside the hook shows the patched lines, though the file on disk lacks them.
    trace = report["failure"]["traceback"]
    assert f'File "{world.models / PATCHED}"' in trace
    assert 'setattr(self.layers[layer_id], "_is_layer_to_capture", True)' in trace
    assert "self.model.set_eagle3_layers_to_capture(layers_to_capture)" in trace
    assert "self.model.set_eagle3_layers_to_capture(layers_to_capture)" in report["failure"]["getsource"]
    assert b"[EAGLE3-PATCH]" not in (world.models / PATCHED).read_bytes()


def test_flags_land_in_a_multiprocessing_spawn_child(world):
    report = _run_probe(world, "--spawn")
    _assert_flags_land(report, world.models)
    assert report["results"]["ids"]["pid"] != report["parent_pid"]


def test_flags_land_on_the_classes_sglangs_model_registry_resolves(world):
    report = _run_probe(world, "--registry")
    _assert_flags_land(report, world.models)
    for wrapper in WRAPPERS:
        assert report[wrapper]["ids"]["wrapper_module"] == "sglang.srt.models.qwen3_5"


def test_a_plain_run_afterwards_still_shows_sglangs_own_broken_behaviour(world):
    done = world.as_user(*world.probe_args("--moe"))
    assert done.returncode == 0, done.stderr[-6000:]
    report = json.loads(done.stdout)
    for wrapper in WRAPPERS:
        for case in EXPECTED:
            assert report[wrapper][case]["flagged_layers"] == [], (wrapper, case)
    assert report["failure"]["traceback"] == ""  # the stock hook only records the list


def test_a_file_changed_after_validation_stops_the_process_through_the_registry(world):
    plan = world.eagle3_patch("run", "--dry-run", "--json", "--", *world.probe_args("--registry"))
    assert plan.returncode == 0, plan.stderr
    handed = json.loads(plan.stdout)
    # As if pip upgraded SGLang between the parent's check and this child's import:
    # another file is mounted over qwen3_5.py (the shared venv itself is untouched).
    changed = world.root / "changed_qwen3_5.py"
    changed.write_bytes((world.models / PATCHED).read_bytes() + b"# upgraded meanwhile\n")
    changed.chmod(0o644)
    world.mount(changed, world.models / PATCHED)
    try:
        done = world.as_user(*handed["argv"], env=handed["env"])
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(["umount", str(world.models / PATCHED)], check=True)
            world.mounts.remove(world.models / PATCHED)
    assert done.returncode == EXIT_STALE, done.stderr[-4000:]
    # The registry was walking the models (it logs and skips modules it cannot
    # import, e.g. one needing torchaudio) and did not get to swallow this one.
    assert "Ignore import error when loading sglang.srt.models." in done.stderr
    assert "Ignore import error when loading sglang.srt.models.qwen3_5" not in done.stderr
    assert f"eagle3-patch: {world.models / PATCHED} changed after eagle3-patch validated it" in done.stderr
    assert done.stdout == ""


def test_every_file_under_sglang_models_is_byte_identical_and_nothing_was_added(world):
    after = _snapshot(world.real_models)
    assert sorted(after) == sorted(world.before)
    assert after == world.before
    assert _snapshot(world.models) == world.before  # the user's read-only view, after every run
