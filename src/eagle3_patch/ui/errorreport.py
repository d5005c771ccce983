"""How every failed command ends: a message on stderr, under ``--json`` one object on stdout, an exit code.

``run_reported`` is the one place an outcome becomes an exit code: our typed
errors, click's usage errors (converted to the same shape), an interrupt, or a
bug. Under ``--json`` each of them prints exactly one object,
``{"error": {"what", "why", "fix"}, "exit_code": N}``, beside whatever the
command had found or measured before it failed (``Eagle3PatchError.found``).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import sys
from collections.abc import Callable, Iterator

import click

from eagle3_patch.errors import CheckFailed, Eagle3PatchError, MissingDependency, OutputFailed, ReaderGone
from eagle3_patch.text.masking import MESSAGE_LIMIT, shown
from eagle3_patch.text.shellwords import quote
from eagle3_patch.ui import render

EXIT_INTERRUPTED = 130  # as a shell reports a process stopped by SIGINT
# Every file eagle3-patch writes maps its failures to a typed error (site/install.py, the plot);
# what is left to fail this way untyped is writing to our own stdout or stderr (EBADF: one
# closed, `>&-`, or opened for reading only, `1</dev/null`).
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EPIPE, errno.EBADF})


class _ClosedStdout(io.TextIOBase):
    """``sys.stdout`` for a process started with it closed (``>&-``), where Python leaves None
    and print and click write nothing, silently: a command with output to show fails as
    writing to a closed descriptor does (exit 74), instead of succeeding having shown nothing."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "its standard output is closed")


class _ClosedStderr(io.TextIOBase):
    """``sys.stderr`` started closed (``2>&-``): what is said there is dropped, as asked, and
    never lands on stdout instead (``print(..., file=None)`` writes to stdout)."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)


@contextlib.contextmanager
def _standard_streams() -> Iterator[None]:
    closed_out, closed_err = sys.stdout is None, sys.stderr is None
    if closed_out:
        sys.stdout = _ClosedStdout()
    if closed_err:
        sys.stderr = _ClosedStderr()
    strict = [stream for stream in (sys.stdout, sys.stderr)
              if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure")]
    # A character the output's encoding lacks (a non-UTF-8 locale: a server's model name, a prompt
    # id, a path) is written as its escape, as Python writes it on stderr, never a crash.
    for stream in strict:
        stream.reconfigure(errors="backslashreplace")
    try:
        yield
    finally:  # back to None: nothing buffered is left for the interpreter's final flush
        for stream in strict:
            with contextlib.suppress(OSError, ValueError):  # closed, or a reader gone: nothing to put back
                stream.reconfigure(errors="strict")
        if closed_out:
            sys.stdout = None
        if closed_err:
            sys.stderr = None


def run_reported(invoke: Callable[[], object], group: click.Group, args: list[str]) -> int:
    """Call ``invoke`` (the CLI on ``args``) and map whatever happens to an exit code, reporting failures."""
    with _standard_streams():
        return _reported(invoke, group, args)


def _reported(invoke: Callable[[], object], group: click.Group, args: list[str]) -> int:
    try:
        code = invoke()
        # What is still buffered fails here, where it maps to an exit code, not in the
        # interpreter's final flush ("Exception ignored ... BrokenPipeError", exit 120).
        sys.stdout.flush()
    except Eagle3PatchError as exc:
        return report(exc, wants_json(group, args))
    except click.ClickException as exc:
        if isinstance(exc, click.UsageError) and exc.ctx is None:  # "Option '--x' requires an argument."
            exc.ctx = _refused_in(group, args)
        error, shown = usage_error(exc), _click_text(exc)
        return report(error, wants_json(group, args),
                      shown=shown if error.why in shown else f"{shown}\n{error.why}")
    except (click.Abort, KeyboardInterrupt):
        interrupted = Eagle3PatchError("Interrupted.", "Ctrl-C (SIGINT) stopped the command.",
                                       "Run it again when you are ready.")
        interrupted.exit_code = EXIT_INTERRUPTED
        return report(interrupted, wants_json(group, args), shown="Interrupted.")
    except Exception as exc:  # the one place a bug becomes a message, not a traceback
        if isinstance(exc, OSError) and exc.errno in _OUTPUT_ERRNOS:
            return report(output_failed(exc), wants_json(group, args))
        missing = missing_dependency(exc) if isinstance(exc, ModuleNotFoundError) else None
        if missing is not None:
            return report(missing, wants_json(group, args))
        if os.environ.get("EAGLE3_PATCH_DEBUG"):
            raise
        from eagle3_patch.ui.crashlog import write_crash_log  # traceback, platform: this path only

        log = write_crash_log(exc, args)
        fix = (f"The traceback is in {log}: report the bug with that file." if log else
               "Rerun with EAGLE3_PATCH_DEBUG=1 for the traceback and report it.")
        return report(Eagle3PatchError(f"internal error: {type(exc).__name__}: {exc}",
                                       "This is a bug in eagle3-patch.", fix),
                      wants_json(group, args))
    return code if isinstance(code, int) else 0


def refuse_unusable_stdout() -> None:
    """``OutputFailed`` now, when our stdout can take nothing (started closed, ``>&-``, or open for
    reading only, ``1</dev/null``): for a command whose work takes minutes (bench), which would
    otherwise be done only for its report to be lost when it is written."""
    usable = not isinstance(sys.stdout, _ClosedStdout)
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no descriptor (captured in-process): writes go where they go
        fd = None
    if usable and fd is not None:
        import fcntl  # only bench asks, once, before its minutes of measuring

        try:
            usable = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY
        except OSError:  # closed since: as good as closed at start
            usable = False
    if not usable:
        raise output_failed(OSError(errno.EBADF, "its standard output is closed"))


@contextlib.contextmanager
def output_errors() -> Iterator[None]:
    """Our stdout or stderr refusing a write, as ``OutputFailed``.

    click catches a broken pipe inside its own ``main`` and exits 1, which is
    ``check``'s "capture does not work"; the CLI runs its parsing and its
    commands inside this, so the failure reaches ``run_reported`` as ours.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in _OUTPUT_ERRNOS:
            raise
        raise output_failed(exc) from exc


def missing_dependency(exc: ModuleNotFoundError) -> MissingDependency | None:
    """``exc`` as the error for a package eagle3-patch's metadata declares (a dependency, or an
    extra's) that is not installed here; None for any other module, whose absence is a bug."""
    import importlib.metadata  # slow to import: this error path only

    def normalized(name: str) -> str:  # PEP 503: the form pip compares names in
        return re.sub(r"[-_.]+", "-", name).lower()

    module = (exc.name or "").partition(".")[0]
    try:
        declared = importlib.metadata.requires("eagle3-patch") or []
    except importlib.metadata.PackageNotFoundError:  # run from a source tree: nothing declares it
        return None
    for requirement in declared:
        spec, _, marker = (part.strip() for part in requirement.partition(";"))
        extra = re.search(r"""extra == ['"]([^'"]+)['"]""", marker)
        # The test extra is the test suite's tooling: the program itself never imports it.
        if normalized(re.match(r"[\w.-]+", spec).group()) != normalized(module) or (extra and extra[1] == "test"):
            continue
        why = (f"{spec} comes with eagle3-patch's optional '{extra[1]}' extra, not installed for {sys.executable}."
               if extra else f"{spec} is a dependency of eagle3-patch, but {sys.executable} cannot import it "
               "(installed with --no-deps, or removed since).")
        also = f"   (or, from the eagle3-patch checkout: pip install '.[{extra[1]}]')" if extra else ""
        return MissingDependency(f"{module} is not installed, and this command needs it.", why,
                                 f"Install it: {quote(sys.executable)} -m pip install {quote(spec)}{also}")
    return None


def output_failed(exc: OSError) -> OutputFailed:
    """The typed error for a write to our own stdout or stderr that failed with ``exc``."""
    if exc.errno == errno.EPIPE:
        return ReaderGone("eagle3-patch's reader closed the pipe.", "Nothing more can be shown.",
                          "Read the whole output (drop `| head`) to see all of it.")
    if exc.errno == errno.EBADF:
        return OutputFailed(
            "eagle3-patch could not write its output: its standard output is closed or not open for writing.",
            "It was started with stdout closed (`>&-`) or read-only (`1</dev/null`); whatever the "
            "command had done before stays done.",
            "Send the output somewhere: `> /dev/null` to discard it, `> FILE` to keep it.")
    return OutputFailed(
        f"eagle3-patch could not write its output: {exc.strerror or exc}.",
        "Writing to stdout or stderr failed; whatever the command had done before stays done.",
        "Send the output where it can be written (a disk with free space).")


def report(exc: Eagle3PatchError, as_json: bool, shown: str | None = None) -> int:
    """Print ``exc`` (``shown`` instead of its text on stderr, if given); return its exit code.

    Best effort: a stream that refuses the report (reader gone, disk full) loses it, and
    the exit code still says what happened.
    """
    if isinstance(exc, ReaderGone):
        _discard(sys.stdout)
        _discard(sys.stderr)
        return exc.exit_code
    if shown is None:
        shown = "\n".join([click.style("error: ", fg="red", bold=True) + exc.what,
                           *(part for part in (exc.why, exc.fix) if part)])
    best_effort(lambda: render.echo(shown, err=True), sys.stderr)
    if as_json:
        error = {"error": {"what": exc.what, "why": exc.why, "fix": exc.fix}, "exit_code": exc.exit_code}
        best_effort(lambda: render.echo(json.dumps({**_found(exc), **error}, indent=2)), sys.stdout)
    return exc.exit_code


def best_effort(write: Callable[[], None], stream) -> None:
    """Call ``write`` (part of a failure's report, on ``stream``); if the stream refuses it, go on
    without it: the exit code is the failure's, not the lost output's."""
    try:
        write()
        stream.flush()
    except OSError:
        _discard(stream)


def _discard(stream) -> None:
    """Point ``stream``'s descriptor at /dev/null, so what it still buffers cannot fail again
    in the interpreter's final flush (Python's own advice for SIGPIPE, in the signal docs)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (captured in-process): nothing buffered to fail
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def usage_error(exc: click.ClickException) -> Eagle3PatchError:
    """click's refusal of a command line, in our shape: its message, why nothing happened, and where
    the accepted options are listed."""
    what, _, detail = exc.format_message().partition("\n")
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "eagle3-patch"
    usage = f"{ctx.get_usage()}\n" if ctx is not None else ""
    # Every refusal comes before the command does anything: click's parsing, or the first lines of its body.
    why = detail or f"{command} refused its command line before doing anything: nothing was changed or started."
    error = Eagle3PatchError(what, why, f"{usage}See: {command} --help")
    error.exit_code = exc.exit_code
    return error


def wants_json(group: click.Group, args: list[str]) -> bool:
    """Whether ``args`` ask for ``--json``, read from the command line itself.

    click stops parsing at the first bad option or value, often before it
    reaches ``--json``. Everything after ``--``, and after the first argument of
    a command that takes no options past it (``run``'s COMMAND), is not ours.
    """
    rest = iter(args)
    name = next((arg for arg in rest if arg == "--" or not arg.startswith("-")), None)
    if "--json" in args[:args.index(name) if name else len(args)]:
        return True  # before the command's name: the group refused it, but it was asked for
    if name is None or name == "--":
        return False
    try:
        command = group.get_command(click.Context(group), name)
    except Exception:  # the command's own module does not import: that failure is being reported
        command = None
    if command is None:
        return "--json" in _before_dashes(list(rest))
    takes_value = {opt for param in command.params if isinstance(param, click.Option)
                   and not param.is_flag and not param.count for opt in param.opts}
    interspersed = command.context_settings.get("allow_interspersed_args", command.allow_interspersed_args)
    for arg in rest:
        if arg == "--":
            return False
        if arg == "--json":
            return True
        if arg in takes_value:
            next(rest, None)
        elif not arg.startswith("-") and not interspersed:
            return False
    return False


def _refused_in(group: click.Group, args: list[str]) -> click.Context:
    """Where click refused ``args`` when it did not say: the command they name, else the group itself."""
    ctx = click.Context(group, info_name="eagle3-patch")
    name = next((arg for arg in args if not arg.startswith("-")), None)
    try:
        command = group.get_command(ctx, name) if name else None
    except Exception:  # the command's own module does not import: its usage cannot be shown
        command = None
    return click.Context(command, info_name=name, parent=ctx) if command else ctx


def _before_dashes(args: list[str]) -> list[str]:
    return args[:args.index("--")] if "--" in args else args


def _click_text(exc: click.ClickException) -> str:
    """What click itself prints for ``exc`` (usage line, hint, message), as shown: it quotes the
    value it refused, which may be anything (megabytes, escape sequences)."""
    out = io.StringIO()
    exc.show(file=out)
    return shown(out.getvalue().rstrip("\n"), MESSAGE_LIMIT, lines=True)


def _found(exc: Eagle3PatchError) -> dict:
    if isinstance(exc, CheckFailed) and exc.result is not None:
        return render.to_json(exc.result)
    return dict(exc.found or {})
