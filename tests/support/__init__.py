"""What the tests share: stand-in servers and interpreters, real releases, the CLI run in
this process, builders of the values the engine decides from, and the probes' common parts.

Test modules import from here and from eagle3_patch, never from one another
(tests/test_test_layout.py checks it). pytest puts tests/ on ``sys.path`` (``pythonpath`` in
pyproject.toml), so this package is ``support`` everywhere; the probes, run by another
interpreter, put the folder above it there themselves. Nothing in this file may import: the
probes' copies in an unprivileged user's folder bring only the modules they use.
"""
