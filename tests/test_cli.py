"""The CLI surface a user sees: version, help, JSON, colour."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys

from eagle3_patch import __version__
from eagle3_patch.cli import cli

from support.cli import invoke_cli
from support.paths import REPO


def test_python_dash_m_prints_version():
    result = subprocess.run([sys.executable, "-m", "eagle3_patch", "--version"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and __version__ in result.stdout


def test_every_command_accepts_python_and_sglang_dir_after_its_name():
    for command in ("apply", "revert", "status", "check", "diff"):
        result = invoke_cli(command, "--help", env=dict(os.environ))
        assert result.returncode == 0
        assert "--python" in result.stdout and "--sglang-dir" in result.stdout


def test_unknown_option_is_a_usage_error_without_traceback():
    result = invoke_cli("apply", "--bogus", env=dict(os.environ))
    assert result.returncode == 2 and "No such option" in result.stderr
    assert "Traceback" not in result.stderr


def test_status_json_has_state_version_dir_and_per_class_hooks(site):
    s = site("0.5.21")
    report = json.loads(s.invoke("status", "--json").stdout)
    assert {"state", "sglang_version", "sglang_dir", "files"} <= set(report)
    hooks = {(f["file"], h["class"]): h["state"] for f in report["files"] for h in f["hooks"]}
    assert hooks == {
        ("qwen3_5.py", "Qwen3_5ForCausalLM"): "missing",
        ("qwen3_5.py", "Qwen3_5ForConditionalGeneration"): "missing",
        ("qwen3_5.py", "Qwen3_5MoeForConditionalGeneration"): "missing",
        ("qwen3_5_text.py", "Qwen3_5ForCausalLM"): "missing",
    }


def _on_terminal(site, **env):
    """Run status with a real pseudo-terminal as stdout, as a user's shell would."""
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "eagle3_patch", "status"], stdout=child,
                            stderr=subprocess.PIPE, env=site.env(**env))
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    proc.stderr.close()
    os.close(main)
    return b"".join(chunks)


def test_colour_on_a_terminal_and_none_with_no_color(site):
    s = site("0.5.12")
    assert b"\x1b[" in _on_terminal(s)
    plain = _on_terminal(s, NO_COLOR="1")
    assert b"unpatched" in plain and b"\x1b[" not in plain


def test_the_program_freezes_the_collector_at_exit_but_main_called_in_process_does_not(site):
    # The program skips the interpreter's last collection (cli.program); a
    # process that calls main itself (a test run, an embedding tool) must keep
    # its collector untouched, or it would never free what was alive then.
    s = site("0.5.21")
    probe = ("import atexit, gc, sys\n"
             "from eagle3_patch import cli\n"
             "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
             "try:\n"
             "    cli.main(['status'])\n"
             "except SystemExit:\n"
             "    print('frozen after main:', gc.get_freeze_count() > 0)\n"
             "if sys.argv[1:] == ['program']:\n"
             "    sys.argv[1:] = ['status']\n"
             "    cli.program()\n")
    plain = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           env=s.env())
    assert "frozen after main: False" in plain.stdout and "frozen at exit: False" in plain.stdout
    program = subprocess.run([sys.executable, "-c", probe, "program"], capture_output=True,
                             text=True, env=s.env())
    # Output is still flushed and atexit still runs after the freeze.
    assert program.returncode == 0 and "state: unpatched" in program.stdout
    assert "frozen at exit: True" in program.stdout


ROOT = REPO


def test_nothing_tells_the_user_to_install_eagle3_patch_from_pypi():
    # The name is not on PyPI (and someone else could take it): install from the checkout or a wheel.
    texts = {ROOT / "README.md": (ROOT / "README.md").read_text()}
    texts |= {path: path.read_text() for path in (ROOT / "src" / "eagle3_patch").rglob("*.py")}
    found = [f"{path.name}: {match.group(0)}" for path, text in texts.items()
             for match in re.finditer(r"pip install ['\"]?eagle3[-_]patch\b[^\s]*", text)]
    assert found == []


def test_readme_names_exactly_the_commands_that_take_python():
    line = next(line for line in (ROOT / "README.md").read_text().splitlines()
                if "take `--python PATH`" in line or "takes `--python PATH`" in line)
    named = set(re.findall(r"`(\w+)`", line.split("take")[0]))
    with_python = {name for name in cli.list_commands(None)
                   if any(p.name == "python" for p in cli.get_command(None, name).params)}
    assert named == with_python and "bench" not in with_python
