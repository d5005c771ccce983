"""`eagle3-patch run` and `serve --in-memory` as a user runs them, on real releases from PyPI."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eagle3_patch.errors import EXIT_STALE
from eagle3_patch.inmemory.payload import BOOTSTRAP_DIR
from eagle3_patch.sharedrules import PAYLOAD_VAR

from support.cli import invoke_cli
from support.marks import first_fast
from support.serve_fixtures import serve, standin_env, tree_digest, write_drafter, write_target
from support.releases import install_release
from support.sites import STANDIN_SGLANG_PARENTS, Site


DEBIAN_PYTHON = "/usr/bin/python3"
MARKED_LINE = 'setattr(self.layers[layer_id], "_is_layer_to_capture", True)'


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    """run memoises its hand-off in the user's cache folder: one per test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "eagle3-patch" / "inmemory"


def decode(encoded: str) -> dict:
    names, _, sources = encoded.partition(";")
    document = json.loads(gzip.decompress(base64.b64decode(sources)))
    assert names.split(",") == [m["name"] for m in document["modules"]]
    return document


def cli(s, *args: str) -> tuple[int, str, str]:
    """The CLI in this process, against ``s``: exit code, stdout, stderr."""
    done = s.invoke(*args)
    return done.returncode, done.stdout, done.stderr


def dry_run(s, *command: str) -> dict:
    done = s.invoke("run", "--dry-run", "--json", "--", *command)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


FIND_SPEC = STANDIN_SGLANG_PARENTS + '''\
for name in sys.argv[2:]:
    spec = importlib.util.find_spec(name)
    source = spec.loader.get_source(name)
    print(name, spec.origin, hashlib.sha256(source.encode()).hexdigest())
'''


@pytest.mark.slow  # the payload served by a child interpreter
def test_dry_run_json_hands_children_exactly_what_apply_writes(site):
    s = site("0.5.21")
    untouched = tree_digest(s.root)
    plan = dry_run(s, sys.executable, "-m", "sglang.launch_server", "--port", "31000")

    assert plan["argv"] == [sys.executable, "-m", "sglang.launch_server", "--port", "31000"]
    assert set(plan["env"]) == {PAYLOAD_VAR, "PYTHONPATH"}
    assert plan["env"]["PYTHONPATH"].split(os.pathsep) == [str(BOOTSTRAP_DIR), str(s.root)]
    assert tree_digest(s.root) == untouched
    modules = decode(plan["env"][PAYLOAD_VAR])["modules"]
    assert [m["name"] for m in modules] == ["sglang.srt.models.qwen3_5", "sglang.srt.models.qwen3_5_text"]
    originals = {m["name"]: hashlib.sha256(Path(m["path"]).read_bytes()).hexdigest() for m in modules}

    served = subprocess.run([DEBIAN_PYTHON, "-c", FIND_SPEC, str(s.root), *originals],
                            env={**os.environ, **plan["env"]}, capture_output=True, text=True)
    assert served.returncode == 0, served.stderr

    assert s.run("apply").returncode == 0
    for module, line in zip(modules, served.stdout.splitlines(), strict=True):
        written = Path(module["path"]).read_bytes()
        assert module["data"].encode("latin-1") == written
        assert module["sha256"] == originals[module["name"]]
        assert line.split() == [module["name"], module["path"], hashlib.sha256(written).hexdigest()]


ODD_HEADERS = {
    "utf8-bom": b"\xef\xbb\xbf",
    "latin1-cookie": b"# -*- coding: latin-1 -*-\n# Qwen3.5, adapt\xe9 pour le caf\xe9\n",
}
COMPILE = FIND_SPEC.replace(
    "print(name, spec.origin, hashlib.sha256(source.encode()).hexdigest())",
    "code = spec.loader.get_code(name)\n"
    "    print(name, 'Qwen3_5ForCausalLM' in code.co_names, source.splitlines()[1])")


@pytest.mark.slow  # the payload served by a child interpreter
@pytest.mark.parametrize("header", ODD_HEADERS.values(), ids=ODD_HEADERS.keys())
def test_a_file_in_its_declared_encoding_is_served_as_apply_writes_it(site, header):
    s = site("0.5.21")
    s.file().write_bytes(header + s.read())
    plan = dry_run(s, sys.executable, "-c", "pass")
    served = subprocess.run([DEBIAN_PYTHON, "-c", COMPILE, str(s.root), "sglang.srt.models.qwen3_5"],
                            env={**os.environ, **plan["env"]}, capture_output=True, text=True)
    assert served.returncode == 0, served.stderr
    assert cli(s, "apply", "--sglang-dir", str(s.package))[0] == 0
    written = s.read()
    module = decode(plan["env"][PAYLOAD_VAR])["modules"][0]
    assert module["data"].encode("latin-1") == written
    text = written.decode("utf-8-sig" if header.startswith(b"\xef") else "latin-1")
    assert served.stdout.split(" ", 2) == ["sglang.srt.models.qwen3_5", "True",
                                           text.splitlines()[1] + "\n"]


@pytest.mark.slow  # the payload served by a child interpreter
def test_a_symlinked_file_in_a_read_only_store_is_served_from_its_target(site, tmp_path):
    s = site("0.5.21")
    real = s.link_to_store(tmp_path / "store", read_only=True)   # where Nix keeps the real file
    plan = dry_run(s, sys.executable, "-c", "pass")
    served = subprocess.run([DEBIAN_PYTHON, "-c", COMPILE, str(s.root), "sglang.srt.models.qwen3_5"],
                            env={**os.environ, **plan["env"]}, capture_output=True, text=True)
    assert served.returncode == 0, served.stderr
    assert decode(plan["env"][PAYLOAD_VAR])["modules"][0]["path"] == str(real)
    assert sorted(p.name for p in real.parent.iterdir()) == ["qwen3_5.py"]


@pytest.mark.slow  # the payload served by a child interpreter
def test_a_child_refuses_a_file_changed_since_the_parent_validated_it(site):
    s = site("0.5.12")
    plan = dry_run(s, sys.executable, "-c", "pass")
    with s.file().open("a") as handle:
        handle.write("# a later pip install -U, or an edit\n")
    served = subprocess.run([DEBIAN_PYTHON, "-c", FIND_SPEC, str(s.root), "sglang.srt.models.qwen3_5"],
                            env={**os.environ, **plan["env"]}, capture_output=True, text=True)
    assert served.returncode == EXIT_STALE
    assert f"eagle3-patch: {s.file()} changed after eagle3-patch validated it" in served.stderr


RECORD = '''\
import json, os, sys
json.dump({"pid": os.getpid(), "env": dict(os.environ)}, open(sys.argv[1], "w"))
sys.exit(7)
'''


@pytest.mark.slow  # run as a process: it execs the command
def test_run_execs_the_command_and_its_exit_code_is_ours(site, tmp_path):
    s = site("0.5.12")
    untouched = tree_digest(s.root)
    record = tmp_path / "record.json"
    launched = subprocess.Popen([sys.executable, "-m", "eagle3_patch", "run", "--", sys.executable,
                                 "-c", RECORD, str(record)], env=s.env(), stderr=subprocess.PIPE,
                                text=True)
    _, stderr = launched.communicate(timeout=120)

    assert launched.returncode == 7
    seen = json.loads(record.read_text())
    assert seen["pid"] == launched.pid  # exec, not a child
    assert decode(seen["env"][PAYLOAD_VAR])["modules"][0]["name"] == "sglang.srt.models.qwen3_5"
    assert "patched in memory" in stderr and seen["env"][PAYLOAD_VAR] not in stderr
    assert tree_digest(s.root) == untouched


@pytest.mark.slow  # run as a process: it execs the command
def test_under_run_a_users_sitecustomize_on_pythonpath_still_runs(site, tmp_path):
    s = site("0.5.12")
    user = tmp_path / "user-site"
    user.mkdir()
    (user / "sitecustomize.py").write_text("MARK = 'the user sitecustomize ran'\n")
    code = "import sitecustomize, sys; print(sitecustomize.MARK); print(sys.path.index(%r) < sys.path.index(%r))"
    env = {**s.env(), "PYTHONPATH": os.pathsep.join([str(user), str(s.root)])}
    done = subprocess.run([sys.executable, "-m", "eagle3_patch", "run", "--", DEBIAN_PYTHON, "-c",
                           code % (str(user), str(s.root))], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["the user sitecustomize ran", "True"]


@pytest.mark.parametrize("version", ["0.5.12", "0.5.22"], ids=["patched-on-disk", "native"])
@pytest.mark.slow
def test_patched_or_native_installations_run_untouched(site, version):
    s = site(version)
    assert cli(s, "apply", "--sglang-dir", str(s.package))[0] == 0
    plan = dry_run(s, sys.executable, "-c", "pass")
    assert plan["env"] == {}


def test_damaged_installation_is_refused_before_exec(site, tmp_path):
    s = site("0.5.12")
    assert s.invoke("apply").returncode == 0
    s.file().write_text(s.file().read_text().replace(MARKED_LINE, "pass"))
    record = tmp_path / "record.json"

    done = s.invoke("run", "--", sys.executable, "-c", RECORD, str(record))

    assert done.returncode == 1 and not record.exists()
    assert "state: damaged" in done.stderr
    assert "eagle3-patch apply" in done.stderr and "eagle3-patch revert" in done.stderr
    assert "Traceback" not in done.stderr


def test_unsupported_release_is_refused_with_apply_s_message(site):
    s = site("0.5.10")
    ran = s.invoke("run", "--", sys.executable, "-c", "pass")
    applied = s.invoke("apply", "--python", sys.executable)  # the interpreter run analysed
    assert ran.returncode == applied.returncode == 4
    assert ran.stderr == applied.stderr


@pytest.mark.slow  # run as a process: a real exec that fails
def test_a_command_that_cannot_start_exits_9(site, tmp_path):
    s = site("0.5.12")
    done = s.run("run", "--sglang-dir", str(s.package), "--", str(tmp_path / "no-such-program"))
    assert done.returncode == 9
    assert "Could not start" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow  # run as a process: a real exec that fails
def test_a_folder_given_as_command_is_named_a_folder_not_permission_denied(site, tmp_path):
    s = site("0.5.12")
    done = s.run("run", "--sglang-dir", str(s.package), "--", str(tmp_path))
    assert done.returncode == 9
    assert f"Could not start {tmp_path}: it is a folder, not a program." in done.stderr


@pytest.mark.parametrize("flags", first_fast(["-I"], ["-E"], ["-S"], ["-uS"], ["-X", "dev", "-E"],
                                              ["-W", "ignore", "-sI"], ["--check-hash-based-pycs", "never", "-S"]))
def test_interpreter_flags_that_drop_the_patch_are_refused(site, flags):
    s = site("0.5.12")
    code, out, err = cli(s, "run", "--dry-run", "--sglang-dir", str(s.package), "--",
                         sys.executable, *flags, "-c", "pass")
    assert code == 8 and out == ""
    assert "eagle3-patch run refuses" in err and "without EAGLE-3 capture" in err


@pytest.mark.parametrize("flags", [["-s"], ["-u", "-B"], ["-c", "pass", "-I"], ["-m", "mod", "-E"]])
@pytest.mark.slow
def test_flags_that_keep_the_patch_or_belong_to_the_program_are_accepted(site, flags):
    s = site("0.5.12")
    plan = dry_run(s, sys.executable, *flags)
    assert PAYLOAD_VAR in plan["env"]


def test_status_json_says_whether_in_memory_mode_works(site):
    s = site("0.5.12")

    def in_memory_ok() -> bool:
        return json.loads(s.invoke("status", "--json").stdout)["in_memory_ok"]

    assert in_memory_ok() is True                      # unpatched
    assert s.invoke("apply").returncode == 0
    assert in_memory_ok() is True                      # patched
    s.file().write_text(s.file().read_text().replace(MARKED_LINE, "pass"))
    assert in_memory_ok() is False                     # damaged
    assert "in memory (eagle3-patch run, serve --in-memory): refused" in s.invoke("status").stdout
    assert json.loads(site("0.5.10").invoke("status", "--json").stdout)["in_memory_ok"] is False


# serve --in-memory and serve's fallback, with the stand-in SGLang interpreter of test_serve_handoff.

@pytest.fixture
def served(tmp_path):
    site = tmp_path / "site"
    package = install_release("0.5.12", site)
    standin, record, env = standin_env(tmp_path, site, package)
    args = ["--python", str(standin), "--model", str(write_target(tmp_path / "target")),
            "--drafter", str(write_drafter(tmp_path / "compressed"))]
    return site, package, record, env, args


@pytest.mark.slow  # serve as a process: it execs the stand-in interpreter
def test_serve_in_memory_never_writes_even_when_it_could(served):
    site, _, record, env, args = served
    untouched = tree_digest(site)

    dry = serve(["--in-memory", *args, "--dry-run", "--json"], env)
    launched = serve(["--in-memory", *args], env)

    assert dry.returncode == launched.returncode == 0, launched.stderr
    assert tree_digest(site) == untouched
    seen = json.loads(record.read_text())
    assert not seen["patched"]
    assert seen["env"][PAYLOAD_VAR] == json.loads(dry.stdout)["env"][PAYLOAD_VAR]
    assert seen["env"]["PYTHONPATH"].split(os.pathsep)[:2] == [str(BOOTSTRAP_DIR), str(site)]
    assert "patched in memory" in launched.stderr and seen["env"][PAYLOAD_VAR] not in launched.stderr


def _read_only(package: Path) -> None:
    for name in ("qwen3_5.py",):
        (package / "srt/models" / name).chmod(0o444)


@pytest.mark.slow  # serve as a process: it execs the stand-in interpreter
def test_serve_falls_back_to_in_memory_on_an_unwritable_installation_and_says_so(served):
    site, package, record, env, args = served
    _read_only(package)
    untouched = tree_digest(site)

    launched = serve(args, env)

    assert launched.returncode == 0, launched.stderr
    assert tree_digest(site) == untouched
    lines = [line for line in launched.stderr.splitlines() if "fell back to in-memory" in line]
    assert len(lines) == 1 and "The file is read-only." in lines[0]
    assert PAYLOAD_VAR in json.loads(record.read_text())["env"]


def test_serve_no_apply_still_refuses_an_unwritable_unpatched_installation(served):
    site, package, record, env, args = served
    _read_only(package)
    done = invoke_cli("serve", "--no-apply", *args, env=env)
    assert done.returncode == 1 and not record.exists()
    assert "fell back" not in done.stderr


def test_serve_in_memory_and_no_apply_together_is_a_usage_error(served):
    _, _, record, env, args = served
    done = invoke_cli("serve", "--in-memory", "--no-apply", *args, env=env)
    assert done.returncode == 2 and not record.exists()


@pytest.mark.slow
def test_a_repeated_run_reuses_its_memo_until_a_file_it_read_changes(site, private_cache):
    s = site("0.5.12")
    first = dry_run(s, sys.executable, "-c", "pass")
    (entry,) = private_cache.iterdir()
    # Prove the second run reads the memo: give it an answer only the memo holds.
    memo = json.loads(entry.read_text())
    document = decode(memo["encoded"])
    document["modules"][0]["data"] += "# from the memo\n"
    memo["encoded"] = memo["encoded"].partition(";")[0] + ";" + \
        base64.b64encode(gzip.compress(json.dumps(document).encode())).decode()
    entry.write_text(json.dumps(memo))
    assert decode(dry_run(s, sys.executable, "-c", "pass")["env"][PAYLOAD_VAR])["modules"][0]["data"] \
        .endswith("# from the memo\n")

    with s.file().open("a") as handle:
        handle.write("# a different file now\n")
    fresh = decode(dry_run(s, sys.executable, "-c", "pass")["env"][PAYLOAD_VAR])["modules"][0]
    assert fresh["sha256"] == hashlib.sha256(s.read()).hexdigest()
    assert fresh["sha256"] != decode(first["env"][PAYLOAD_VAR])["modules"][0]["sha256"]
    assert "# from the memo" not in fresh["data"] and len(list(private_cache.iterdir())) == 2


@pytest.mark.parametrize("damage", ["not json", '{"encoded": 1, "files": []}', "[]", '{"encoded": "x"}'])
@pytest.mark.slow
def test_a_damaged_memo_is_computed_afresh(site, private_cache, damage):
    s = site("0.5.12")
    expected = dry_run(s, sys.executable, "-c", "pass")
    (entry,) = private_cache.iterdir()
    entry.write_text(damage)
    assert dry_run(s, sys.executable, "-c", "pass") == expected


@pytest.mark.slow
def test_an_unwritable_cache_folder_is_no_obstacle(site, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    s = site("0.5.12")
    plan = dry_run(s, sys.executable, "-c", "pass")
    assert decode(plan["env"][PAYLOAD_VAR])["modules"][0]["sha256"] == hashlib.sha256(s.read()).hexdigest()


@pytest.mark.slow  # a tmpfs mounted and filled; serve as a process
def test_serve_on_a_full_disk_fails_with_exit_6_instead_of_falling_back(tmp_path):
    disk = tmp_path / "small-disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], check=True)
    try:
        package = install_release("0.5.12", disk / "site")
        standin, record, env = standin_env(tmp_path, disk / "site", package)
        with (disk / "filler").open("wb") as filler:
            with pytest.raises(OSError):
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
        untouched = tree_digest(disk / "site")

        done = serve(["--python", str(standin), "--model", str(write_target(tmp_path / "target")),
                      "--drafter", str(write_drafter(tmp_path / "compressed"))], env)

        assert done.returncode == 6, done.stderr
        assert "No space left on device" in done.stderr and "fell back" not in done.stderr
        lock = package / "srt/models/.eagle3-patch.lock"
        assert lock.stat().st_size == 0  # apply's documented lock file, empty
        lock.unlink()
        assert tree_digest(disk / "site") == untouched and not record.exists()
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.slow
def test_without_an_absolute_home_run_memoises_nothing_in_the_working_directory(site, tmp_path,
                                                                                monkeypatch):
    s = site("0.5.12")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", "relative-home")
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    assert PAYLOAD_VAR in dry_run(s, sys.executable, "-c", "pass")["env"]
    assert list(workdir.iterdir()) == []


@pytest.mark.slow
def test_a_memo_folder_others_may_write_is_not_trusted(site, private_cache):
    s = site("0.5.12")
    expected = dry_run(s, sys.executable, "-c", "pass")
    (entry,) = private_cache.iterdir()
    memo = json.loads(entry.read_text())
    memo["files"] = ["planted.py"]
    entry.write_text(json.dumps(memo))
    private_cache.chmod(0o777)
    code, out, _ = cli(s, "run", "--dry-run", "--sglang-dir", str(s.package), "--", "true")
    assert code == 0 and "planted.py" not in out and "qwen3_5.py" in out
    assert dry_run(s, sys.executable, "-c", "pass") == expected


@pytest.mark.slow  # an unprivileged user (setpriv)
def test_an_unreadable_model_file_is_the_analysis_clear_error_not_a_bug(user_env):
    root = user_env.folder("e3i7-site-")
    try:
        s = Site(root / "site", "0.5.21")
        s.file().chmod(0o000)
        done = user_env.cli("e3i7", "run", "--dry-run", "--", "true",
                            capture_output=True, text=True, env=s.env(HOME=str(root)), timeout=120)
    finally:
        shutil.rmtree(root)
    assert done.returncode == 5, done.stderr
    assert f"Cannot read {s.file()}" in done.stderr and "a bug" not in done.stderr


def _interpreter_importing(site_root: Path, folder: Path) -> Path:
    """A `python` that imports the SGLang in ``site_root`` (a venv's python, in effect)."""
    program = folder / "python"
    folder.mkdir(parents=True)
    program.write_text(f"#!/bin/sh\nPYTHONPATH={site_root} exec {sys.executable} \"$@\"\n")
    program.chmod(0o755)
    return program


def test_a_python_command_that_imports_another_sglang_is_refused_before_exec(site, tmp_path):
    analysed, other = site("0.5.12"), site("0.5.21")
    program = _interpreter_importing(other.root, tmp_path / "other-venv/bin")

    done = analysed.invoke("run", "--sglang-dir", str(analysed.package), "--", str(program),
                           "-m", "sglang.launch_server", "--port", "31000")

    assert done.returncode == 3
    assert f"imports {other.package}, not {analysed.package}" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_python_command_that_imports_the_analysed_sglang_is_accepted(site, tmp_path):
    s = site("0.5.12")
    program = _interpreter_importing(s.root, tmp_path / "venv/bin")
    done = s.invoke("run", "--dry-run", "--json", "--python", str(program), "--", str(program),
                    "-Xdev", "-msglang.launch_server")
    assert done.returncode == 0, done.stderr
    assert PAYLOAD_VAR in json.loads(done.stdout)["env"]


@pytest.mark.slow  # run as a process: it execs the command
def test_run_inside_run_after_apply_replaces_the_inherited_payload(site):
    # The user patched on disk inside an outer run; the inner run decides afresh.
    s = site("0.5.12")
    eagle3_patch = [sys.executable, "-m", "eagle3_patch"]
    inner = (shlex.join([*eagle3_patch, "apply"]) + " && " +
             shlex.join([*eagle3_patch, "run", "--", DEBIAN_PYTHON, "-c", FIND_SPEC, str(s.root),
                         "sglang.srt.models.qwen3_5"]))
    done = s.run("run", "--", "bash", "-c", inner)
    assert done.returncode == 0, done.stderr
    name, origin, digest = done.stdout.splitlines()[-1].split()
    assert origin == str(s.file()) and digest == hashlib.sha256(s.read()).hexdigest()
    assert b"[EAGLE3-PATCH]" in s.read()


@pytest.mark.parametrize("version", ["0.5.12", "0.5.22"], ids=["patched-on-disk", "native"])
@pytest.mark.slow
def test_a_payload_inherited_from_an_outer_run_is_cancelled_where_nothing_is_added(
        site, version, monkeypatch):
    s = site(version)
    assert cli(s, "apply", "--sglang-dir", str(s.package))[0] == 0
    monkeypatch.setenv(PAYLOAD_VAR, "sglang.srt.models.qwen3_5;H4sI-from-an-outer-run")
    plan = dry_run(s, sys.executable, "-c", "pass")
    assert plan["env"] == {PAYLOAD_VAR: ""}


@pytest.mark.slow  # serve as a process: it execs the stand-in interpreter
def test_plain_serve_inside_run_does_not_pass_on_the_outer_runs_payload(served, monkeypatch):
    site, _, record, env, args = served
    outer = json.loads(subprocess.run(
        [sys.executable, "-m", "eagle3_patch", "run", "--dry-run", "--json", "--", "true"],
        env=env, capture_output=True, text=True, check=True).stdout)["env"]
    assert outer[PAYLOAD_VAR]

    launched = serve(args, {**env, **outer})   # applies the patch on disk, then launches

    assert launched.returncode == 0, launched.stderr
    seen = json.loads(record.read_text())
    assert seen["patched"] and not seen["env"].get(PAYLOAD_VAR)


def _pad(path: Path, size: int) -> None:
    """Grow a model file by ``size`` bytes that gzip cannot shrink (a string of random base64)."""
    noise = base64.b64encode(random.Random(17).randbytes(size * 3 // 4)).decode()
    path.write_bytes(path.read_bytes() + f'\n_PADDING = "{noise}"\n'.encode())


def _payload(env: dict[str, str]) -> str:
    """The one payload string, joined again from the variables that carry it."""
    names, _, rest = env[PAYLOAD_VAR].partition(";")
    count, separator, first = rest.partition(";")
    if not separator:
        return env[PAYLOAD_VAR]
    return names + ";" + first + "".join(env[f"{PAYLOAD_VAR}_{i}"] for i in range(1, int(count)))


@pytest.mark.slow  # a child interpreter, and run as a process execs it
def test_a_model_file_too_big_for_one_variable_is_carried_in_several(site, tmp_path):
    s = site("0.5.21")
    _pad(s.file(), 300_000)
    plan = dry_run(s, sys.executable, "-c", "pass")
    assert len(plan["env"]) > 2
    assert all(len(f"{k}={v}") < 131072 for k, v in plan["env"].items())
    assert decode(_payload(plan["env"]))["modules"][0]["sha256"] == hashlib.sha256(s.read()).hexdigest()

    served = subprocess.run([DEBIAN_PYTHON, "-c", COMPILE, str(s.root), "sglang.srt.models.qwen3_5"],
                            env={**os.environ, **plan["env"]}, capture_output=True, text=True)
    assert served.returncode == 0, served.stderr
    assert served.stdout.split(" ", 2)[:2] == ["sglang.srt.models.qwen3_5", "True"]

    record = tmp_path / "record.json"
    ran = s.run("run", "--", sys.executable, "-c", RECORD, str(record))
    assert ran.returncode == 7, ran.stderr
    seen = json.loads(record.read_text())["env"]
    assert _payload(seen) == _payload(plan["env"]) and seen[f"{PAYLOAD_VAR}_1"] not in ran.stderr


@pytest.mark.slow  # serve as a process: it execs the stand-in interpreter
def test_serve_in_memory_carries_a_model_file_too_big_for_one_variable(served):
    site, package, record, env, args = served
    _pad(package / "srt/models/qwen3_5.py", 300_000)
    dry = serve(["--in-memory", *args, "--dry-run", "--json"], env)
    launched = serve(["--in-memory", *args], env)
    assert dry.returncode == launched.returncode == 0, launched.stderr
    seen = json.loads(record.read_text())["env"]
    assert _payload(seen) == _payload(json.loads(dry.stdout)["env"])
    assert seen[PAYLOAD_VAR] not in launched.stderr


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["text", "json"])
@pytest.mark.slow
def test_a_model_file_too_big_to_carry_at_all_is_refused_with_the_way_out(site, json_flag):
    s = site("0.5.21")
    _pad(s.file(), 1_500_000)
    done = s.invoke("run", "--dry-run", *json_flag, "--", sys.executable, "-c", "pass")
    assert done.returncode == 4, done.stderr
    said = done.stdout + done.stderr
    assert "too large to hand over in memory" in said and "eagle3-patch apply" in said
    assert "Traceback" not in said and "a bug" not in said


@pytest.mark.slow  # run as a process: it execs the command
def test_run_inside_another_installations_run_chains_each_bootstrap_once(site, tmp_path):
    # `run -- other-venv/bin/eagle3-patch run -- python ...`: two bootstrap folders on PYTHONPATH.
    s = site("0.5.12")
    other = tmp_path / "other-venv"
    shutil.copytree(Path(BOOTSTRAP_DIR).parents[1], other / "eagle3_patch",
                    ignore=shutil.ignore_patterns("__pycache__"))
    other_cli = ("import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
                 "runpy.run_module('eagle3_patch', run_name='__main__')")
    user = tmp_path / "user-site"
    user.mkdir()
    (user / "sitecustomize.py").write_text("import builtins\n"
                                           "builtins.RUNS = getattr(builtins, 'RUNS', 0) + 1\n")
    child = FIND_SPEC + "import builtins; print(builtins.RUNS, os.environ['PYTHONPATH'])\n"
    env = {**s.env(), "PYTHONPATH": os.pathsep.join([str(user), str(s.root)])}
    done = subprocess.run(
        [sys.executable, "-m", "eagle3_patch", "run", "--", sys.executable, "-c", other_cli, str(other),
         "run", "--", DEBIAN_PYTHON, "-c", child, str(s.root), "sglang.srt.models.qwen3_5"],
        env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Error in sitecustomize" not in done.stderr, done.stderr
    served, (runs, pythonpath) = done.stdout.splitlines()[0].split(), done.stdout.splitlines()[1].split()
    assert served[1] == str(s.file()) and runs == "1"
    assert pythonpath.split(os.pathsep)[:3] == [str(other / "eagle3_patch/inmemory/bootstrap"),
                                                str(BOOTSTRAP_DIR), str(user)]
