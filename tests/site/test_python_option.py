"""`--python` names a program eagle3-patch asks which SGLang it imports: a wrong answer is exit 3.

Issue 17, D: a program answering JSON of the wrong shape was exit 70, and a real Python whose
sitecustomize prints to stdout was refused as "not a Python".
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path

import pytest

from eagle3_patch.cli import main
from eagle3_patch.errors import EXIT_NOT_FOUND, InterpreterError
from eagle3_patch.site.locate import ask_interpreter

from support.cli import invoke_main
from support.marks import first_fast


# Runs the query it is given, with json.dumps answering PAYLOAD instead: whatever framing the
# query puts around its answer stays, only the answer's shape is wrong.
WRONG_SHAPE = """#!{python}
import io, json, sys
sys.stdout = io.TextIOWrapper(sys.stdout.buffer, errors="surrogateescape")
json.dumps = lambda *args, **kwargs: {payload!r}
at = sys.argv.index("-c")
code, sys.argv = sys.argv[at + 1], ["-c", *sys.argv[at + 2:]]  # as `python -c CODE ARGS` sees them
exec(code)
"""


def status(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(["status", *args])
    out, err = capsys.readouterr()
    return exited.value.code, out, err


@pytest.mark.parametrize("payload", first_fast(
    '{"locations": 5}', "[null]", '{"locations": [null]}', '{"locations": "/usr/lib"}',
    '{"locations": [5]}', '{"locations": {"a": 1}}', '{"locations": ["/tmp/\\u0000x"]}',
    '{"locations": ["/tmp/\0x"]}', "\0\0\0", '{"locations": [""]}', "\udcff",
    "[" * 100_000 + "]" * 100_000,
), ids=["number", "list-of-null", "null-location", "string", "number-location", "object", "escaped-nul",
        "raw-nul", "only-nul", "empty-location", "not-utf8", "nested-past-the-recursion-limit"])
def test_a_program_answering_the_wrong_shape_is_exit_3(payload: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "python"
    fake.write_text(WRONG_SHAPE.format(python=sys.executable, payload=payload))
    fake.chmod(0o755)

    code, out, err = status(capsys, "--python", str(fake), "--json")

    assert code == EXIT_NOT_FOUND, err
    assert f"{fake} did not answer as a Python interpreter" in err
    assert json.loads(out)["exit_code"] == EXIT_NOT_FOUND
    assert "\0" not in err


def test_the_wrong_shape_stand_in_answers_like_python_when_its_answer_has_the_right_shape(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "python"
    fake.write_text(WRONG_SHAPE.format(python=sys.executable, payload='{"locations": []}'))
    fake.chmod(0o755)

    code, out, err = status(capsys, "--python", str(fake), "--json")

    assert code == EXIT_NOT_FOUND and f"No SGLang found for {fake}." in err, err


NOISY_SITECUSTOMIZE = """\
import atexit, sys
print("hello from sitecustomize")
sys.stdout.write("no newline here, then ")
atexit.register(lambda: print("goodbye from sitecustomize\\n{\\"locations\\": []}"))
"""


def test_a_python_whose_sitecustomize_prints_to_stdout_is_still_a_python(
        site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    installed = site("0.5.21")
    noise = tmp_path / "noise"
    noise.mkdir()
    (noise / "sitecustomize.py").write_text(NOISY_SITECUSTOMIZE)
    # Another path to this interpreter, so that it is asked as a child, not answered in process.
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    monkeypatch.setenv("PYTHONPATH", f"{installed.root}:{noise}")

    code, out, err = status(capsys, "--python", str(python), "--json")

    assert code == 0, err
    assert json.loads(out)["sglang_dir"] == str(installed.package)


def test_a_program_that_prints_without_end_is_stopped_and_refused(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    flood = tmp_path / "python"
    flood.write_text("#!/bin/sh\nexec yes\n")  # reading all of it would fill memory before the 60 s timeout
    flood.chmod(0o755)

    code, _, err = status(capsys, "--python", str(flood))

    assert code == EXIT_NOT_FOUND, err
    assert f"{flood} did not answer as a Python interpreter (stopped after it printed more than 1 MiB)" in err


# Issue 23, item 8: `--python` that hangs or forks, and the messages for what happened.

def _interpreter(path: Path, body: str) -> Path:
    """A shell script as the interpreter: ``body``, then (unless it ended) this very Python."""
    path.write_text(f"#!/bin/sh\n{body}\nexec {sys.executable} \"$@\"\n")
    path.chmod(0o755)
    return path


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.fixture
def pids(tmp_path: Path):
    """The file a stand-in records the pids it leaves behind in; any still running are ended after the test."""
    recorded = tmp_path / "pids"
    yield recorded
    for pid in map(int, recorded.read_text().split() if recorded.exists() else []):
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_python_that_leaves_a_child_holding_its_output_answers_at_once_and_the_child_is_ended(
        tmp_path: Path, pids: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The child inherits the interpreter's stdout and stderr: waiting for their end waited 60 s.
    python = _interpreter(tmp_path / "python", f"sleep 1000 & echo $! > {pids}")
    started = time.monotonic()

    code, _, err = status(capsys, "--python", str(python))

    assert time.monotonic() - started < 30  # it answered; before, the tool waited its full 60 s
    assert code == EXIT_NOT_FOUND and f"No SGLang found for {python}." in err, err
    assert _gone(int(pids.read_text()))


@pytest.mark.slow  # waits out a (shortened) timeout
def test_a_python_that_hangs_is_stopped_with_its_children_and_the_message_says_it_started(
        tmp_path: Path, pids: Path) -> None:
    python = _interpreter(tmp_path / "python", f"echo $$ > {pids}\nsleep 1000 & echo $! >> {pids}\nexec sleep 1000")

    with pytest.raises(InterpreterError) as raised:
        ask_interpreter(str(python), timeout=1)

    message = raised.value.message
    assert f"The interpreter {python} started but did not answer within 1 s" in message
    assert "Starting it failed" not in message and "find_spec" not in message  # our query is ours
    assert all(map(_gone, map(int, pids.read_text().split())))


def _missing_shebang_target(tmp_path: Path) -> str:
    script = tmp_path / "python"
    script.write_text("#!/nonexistent/bin/python\n")
    script.chmod(0o755)
    return str(script)


def _symlink_loop(tmp_path: Path) -> str:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    return str(tmp_path / "a")


def _not_executable(tmp_path: Path) -> str:
    (tmp_path / "python").write_text("#!/bin/sh\n")
    return str(tmp_path / "python")


def _no_shebang(tmp_path: Path) -> str:
    (tmp_path / "python").write_text("echo hello\n")
    (tmp_path / "python").chmod(0o755)
    return str(tmp_path / "python")


def _dangling(tmp_path: Path) -> str:
    (tmp_path / "python").symlink_to(tmp_path / "gone")
    return str(tmp_path / "python")


@pytest.mark.parametrize("given, reason", [
    (lambda tmp_path: "", "the name is empty"),
    (str, "it is a folder, not a program"),
    (_not_executable, "you may not execute it"),
    (_symlink_loop, "its symlinks form a loop"),
    (_dangling, "it is a symlink to {tmp_path}/gone, which does not exist"),
    (_missing_shebang_target, "the interpreter its first line (#!) names does not exist"),
    (_no_shebang, "it is not a program this system can run"),
    (lambda tmp_path: os.devnull, "it is not a file (a device, a pipe or a socket)"),
    (lambda tmp_path: str(tmp_path / "nothing-here"), "no such file"),
    (lambda tmp_path: "python-of-no-such-name", "no program of that name is on PATH"),
], ids=["empty", "folder", "not-executable", "symlink-loop", "dangling-symlink", "missing-#!-target",
        "no-#!-line", "device", "missing", "not-on-path"])
def test_an_interpreter_that_cannot_start_is_named_with_what_is_wrong(
        given, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    python = given(tmp_path)

    code, _, err = status(capsys, "--python", python)

    assert code == EXIT_NOT_FOUND, err
    assert f"Cannot start the interpreter {shlex.quote(python)}: {reason.format(tmp_path=tmp_path)}" in err
    assert "find_spec" not in err and "Permission denied" not in err


@pytest.mark.parametrize("body, how", [
    ("echo 'no such module' >&2; exit 3", "(it exited with code 3)"),
    ("kill -KILL $$", "(it was killed by signal SIGKILL)"),
    ("echo 'hello'; exit 0", "(it exited with code 0 without printing the answer)"),
], ids=["exit-code", "signal", "no-answer"])
def test_an_interpreter_that_ends_without_answering_is_named_with_how_it_ended(
        body: str, how: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    python = _interpreter(tmp_path / "python", body)

    code, _, err = status(capsys, "--python", str(python))

    assert code == EXIT_NOT_FOUND, err
    assert f"{python} did not answer as a Python interpreter {how}." in err
    assert "find_spec" not in err


def test_serve_with_an_empty_python_refuses_it_instead_of_running_its_own(tmp_path: Path) -> None:
    # `python or sys.executable` took the empty value for "not given".
    done = invoke_main("serve", "--python", "", "--dry-run", "--model", str(tmp_path), "--drafter", str(tmp_path))

    assert done.exit_code == EXIT_NOT_FOUND, done.stderr
    assert "Cannot start the interpreter '': the name is empty." in done.stderr
