"""eagle3-patch's in-memory bootstrap, run at start-up by every Python under `eagle3-patch run`.

`eagle3-patch run` / `serve --in-memory` put this folder first on PYTHONPATH
and the patched model sources, validated by the parent, in the environment
(the payload). SGLang's scheduler, detokenizer and tensor-parallel workers are
multiprocessing *spawn* children that inherit only the environment, so this is
how the patch reaches them.

This file runs in interpreters where neither eagle3-patch nor libcst is
importable (another venv's Python), so it uses the standard library only, and
loads what it shares with the parent (the variables' names, the payload's
format and limits, the cache's trust rule, the exit code) from eagle3-patch's
sharedrules.py by its path in the same installation. Every import but os and
sys is made inside the function that needs it: this file runs at the start of every
Python process SGLang starts, and most of them never import a served module.

- A meta-path finder serves each listed module from the patched text, after
  checking that the file Python would import is the one the parent validated
  (path and SHA-256). If not, or if the payload is damaged or over its limits,
  it fails loudly: SGLang's model registry turns an ImportError into a log line
  and a fallback class, so this process prints a message naming eagle3-patch
  and exits instead.
- The patched text is compiled here; SGLang's __pycache__ is never read (its
  .pyc holds the stock code) nor written (a later plain run must see SGLang's
  own code). The compiled code is memoised in the user's cache (timings:
  benchmarks/README.md), keyed by the parent's key (eagle3-patch's
  code; none under --no-cache), the interpreter's bytecode magic, the path and
  the patched text.
- linecache is seeded, so tracebacks and inspect.getsource show what ran
  (before Python 3.13 the default excepthooks read the file on disk instead:
  where a module is served they print through the traceback module).
- The sitecustomize this file shadows (the user's on PYTHONPATH, conda's,
  Debian's in the stdlib folder) is run afterwards, as Python would have,
  passing over every eagle3-patch bootstrap (another installation's, from a
  run inside a run): each runs once, and only the first serves.
"""

import os
import sys

# How this file and every earlier release of it begins: what marks a bootstrap as ours.
_OPENING = b'"""eagle3-patch\'s in-memory bootstrap'


def _load_rules():
    """eagle3_patch/sharedrules.py beside this folder's package, loaded by path (not importable here)."""
    from importlib.util import module_from_spec, spec_from_file_location

    package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = spec_from_file_location("eagle3_patch_sharedrules", os.path.join(package, "sharedrules.py"))
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_rules = _load_rules()


def _die(message):
    sys.stderr.write(
        f"eagle3-patch: {message}\n"
        f"eagle3-patch: this process (pid {os.getpid()}) stops here instead of running SGLang "
        "without EAGLE-3 capture. Start it again with `eagle3-patch run -- ...`, so the "
        "installed files are analysed afresh (or patch them: `eagle3-patch apply`).\n")
    sys.stderr.flush()
    os._exit(_rules.EXIT_STALE)


def _sealed(data):
    """A memo entry: the SHA-256 of ``data``, then ``data``."""
    import hashlib

    return hashlib.sha256(data).digest() + data


def _memoised_code(entry):
    """What a sealed entry holds, None for anything else. The seal comes first because
    marshal trusts its input: a few damaged bytes can make it allocate gigabytes over and
    over (b"[[[[": lists of a billion items each) for hours, in every SGLang process."""
    import hashlib
    import marshal

    if entry is None or entry[:32] != hashlib.sha256(entry[32:]).digest():
        return None
    try:
        return marshal.loads(entry[32:])
    except Exception:  # sealed yet unreadable (another Python's marshal): compile
        return None


# --- serving the patched modules -----------------------------------------------------------

class _PatchedSourceLoader:
    def __init__(self, path, data, cache_key):
        self.path = path
        self.data = data  # the patched file's bytes: compile() honours its BOM or coding cookie
        self.cache_key = cache_key  # the parent's, None: memoise nothing

    def create_module(self, spec):
        return None

    def get_filename(self, fullname):
        return self.path

    def get_source(self, fullname):
        from importlib.util import decode_source

        return decode_source(self.data)

    def is_package(self, fullname):
        return False

    def get_code(self, fullname):
        import marshal
        from types import CodeType

        name = self._memo_name()
        if name is not None:
            code = _memoised_code(_rules.read_entry(_rules.BYTECODE, name, _rules.MAX_BYTECODE_BYTES))
            if isinstance(code, CodeType):
                return code
        code = compile(self.data, self.path, "exec", dont_inherit=True)
        if name is not None:
            _rules.write_entry(_rules.BYTECODE, name, _sealed(marshal.dumps(code)))
        return code

    def _memo_name(self):
        if self.cache_key is None or _rules.cache_disabled():
            return None
        import hashlib
        from importlib.util import MAGIC_NUMBER

        key = hashlib.sha256(b"\0".join([self.cache_key.encode(), MAGIC_NUMBER, os.fsencode(self.path),
                                         self.data]))
        return key.hexdigest() + ".bin"

    def exec_module(self, module):
        import io
        import linecache

        # mtime None: linecache.checkcache keeps the entry instead of re-reading
        # the stock file on disk, which is what a traceback would otherwise show.
        source = self.get_source(module.__name__)
        # Lines as Python numbers them (decode_source made every line end "\n"):
        # str.splitlines would also break at a form feed, \x85, \u2028...
        lines = io.StringIO(source).readlines()
        linecache.cache[self.path] = (len(source), None, lines, self.path)
        _tracebacks_through_linecache()
        module.__cached__ = None
        exec(self.get_code(module.__name__), module.__dict__)


class _PatchedSourceFinder:
    def __init__(self, names, encoded):
        self.names = names
        self.encoded = encoded
        self.modules = None
        self.cache_key = None

    def _entry(self, fullname):
        if self.modules is None:
            # Everything is checked here, where a failure is loud: an exception
            # later, inside the import, is what SGLang's registry swallows. So is
            # any exception here: each one is a damaged variable, whatever its type.
            try:
                self.cache_key, modules = _rules.decode(self.encoded)
            except Exception as exc:
                _die(f"the environment variable {_rules.PAYLOAD_VAR} is damaged ({type(exc).__name__}: "
                     f"{str(exc)[:200]}).")
            self.modules = {name: (path, sha256, data) for name, path, sha256, data in modules}
        return self.modules[fullname]  # decode checked that the names listed are the modules carried

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.names:
            return None
        validated, sha256, data = self._entry(fullname)
        import hashlib
        from importlib.machinery import ModuleSpec, PathFinder

        found = PathFinder.find_spec(fullname, path)
        origin = found.origin if found is not None else None
        if origin is None or os.path.realpath(origin) != validated:
            _die(f"{fullname} would be imported from {origin}, not from {validated} "
                 "which eagle3-patch validated before starting this program.")
        try:
            with open(origin, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
        except OSError as exc:
            _die(f"cannot read {origin}: {exc}.")
        if digest != sha256:
            _die(f"{origin} changed after eagle3-patch validated it (SHA-256 {digest}, "
                 f"expected {sha256}).")
        spec = ModuleSpec(fullname, _PatchedSourceLoader(origin, data, self.cache_key), origin=origin)
        spec.has_location = True
        return spec


def _print_exception(exc_type, value, tb):
    import traceback

    if sys.stderr is not None:  # as the default hook: no stderr, nothing to print to
        traceback.print_exception(exc_type, value, tb, file=sys.stderr)


def _print_thread_exception(args):
    import threading
    import traceback

    # What threading's own pure-Python excepthook does.
    if args.exc_type is SystemExit:
        return
    stderr = sys.stderr if sys.stderr is not None else getattr(args.thread, "_stderr", None)
    if stderr is None:
        return
    name = args.thread.name if args.thread is not None else threading.get_ident()
    print(f"Exception in thread {name}:", file=stderr, flush=True)
    traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback, file=stderr)
    stderr.flush()


def _tracebacks_through_linecache():
    """Let uncaught exceptions show the served lines, not the stock file's.

    Before Python 3.13 the default sys.excepthook and threading.excepthook are
    C code (PyErr_Display, Python/traceback.c) that opens each frame's file and
    reads the line from disk, never consulting linecache: a traceback through
    a patched method would quote the stock file (blank past its end). The
    traceback module reads linecache, seeded with the served text; 3.13's
    default hooks already use it. A hook someone else set is left alone.
    """
    if sys.version_info >= (3, 13):
        return
    import threading

    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _print_exception
    if threading.excepthook is threading.__excepthook__:
        threading.excepthook = _print_thread_exception


def _install_finder():
    # Another installation's bootstrap may have run first (it chained to this one).
    if any(type(f).__name__ == _PatchedSourceFinder.__name__ for f in sys.meta_path):
        return
    try:
        encoded = _rules.joined(os.environ)
    except _rules.DamagedPayload as exc:
        _die(f"the environment variable {_rules.PAYLOAD_VAR} is damaged ({exc}).")
    if encoded is not None:
        names = encoded.partition(";")[0]
        sys.meta_path.insert(0, _PatchedSourceFinder(frozenset(names.split(",")), encoded))


def _is_bootstrap(path):
    """Whether ``path`` is this file or another eagle3-patch installation's copy of it."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(_OPENING)) == _OPENING
    except OSError:
        return False


def _run_shadowed_sitecustomize():
    """Run the first sitecustomize on sys.path that is not an eagle3-patch bootstrap.

    Two installations' bootstrap folders on one PYTHONPATH (a run inside
    another venv's run, or one the user put there) must not run each other
    without end: every bootstrap folder is passed over, the user's runs once.
    """
    from importlib.machinery import PathFinder
    from importlib.util import module_from_spec

    rest = list(sys.path)
    while True:
        spec = PathFinder.find_spec("sitecustomize", rest)
        if spec is None or spec.loader is None or not spec.origin:
            return
        if not _is_bootstrap(spec.origin):
            break
        folder = os.path.realpath(os.path.dirname(spec.origin))
        left = [entry for entry in rest if os.path.realpath(entry or os.curdir) != folder]
        if len(left) == len(rest):
            return  # found through no entry we can drop: give up rather than loop
        rest = left
    module = module_from_spec(spec)
    sys.modules[__name__] = module
    spec.loader.exec_module(module)


_install_finder()
_run_shadowed_sitecustomize()
