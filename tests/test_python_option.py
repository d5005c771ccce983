"""`--python` names a program eagle3-patch asks which SGLang it imports: a wrong answer is exit 3.

Issue 17, D: a program answering JSON of the wrong shape was exit 70, and a real Python whose
sitecustomize prints to stdout was refused as "not a Python".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from eagle3_patch.cli import main
from eagle3_patch.errors import EXIT_NOT_FOUND

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


@pytest.mark.parametrize("payload", [
    '{"locations": 5}', "[null]", '{"locations": [null]}', '{"locations": "/usr/lib"}',
    '{"locations": [5]}', '{"locations": {"a": 1}}', '{"locations": ["/tmp/\\u0000x"]}',
    '{"locations": ["/tmp/\0x"]}', "\0\0\0", '{"locations": [""]}', "\udcff",
    "[" * 100_000 + "]" * 100_000,
], ids=["number", "list-of-null", "null-location", "string", "number-location", "object", "escaped-nul",
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
