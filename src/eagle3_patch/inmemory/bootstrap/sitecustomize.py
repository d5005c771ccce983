"""eagle3-patch's in-memory bootstrap, run at start-up by every Python under `eagle3-patch run`.

`eagle3-patch run` / `serve --in-memory` put this folder first on PYTHONPATH
and the patched model sources, validated by the parent, in the environment
variable EAGLE3_PATCH_INMEMORY ("<module>,<module>;" then gzip + base64 JSON;
the names come first so that start-up, paid by every Python process, only
splits a string: the sources are decoded when a listed module is imported). SGLang's scheduler,
detokenizer and tensor-parallel workers are multiprocessing *spawn* children
that inherit only the environment, so this is how the patch reaches them.

This file runs in interpreters where neither eagle3-patch nor libcst is
importable (another venv's Python), so it uses the standard library only.

- A payload longer than Linux allows one variable (128 KiB) continues in
  EAGLE3_PATCH_INMEMORY_1, _2, ...; the first variable then reads
  "<module>,<module>;<count>;<first piece>".
- A meta-path finder serves each listed module from the patched text, after
  checking that the file Python would import is the one the parent validated
  (path and SHA-256). If not, it fails loudly: SGLang's model registry turns an
  ImportError into a log line and a fallback class, so this process prints a
  message naming eagle3-patch and exits instead.
- The patched text is compiled here; SGLang's __pycache__ is never read (its
  .pyc holds the stock code) nor written (a later plain run must see SGLang's
  own code). The compiled code is memoised in the user's cache (timings:
  benchmarks/README.md), keyed by the parent's key (eagle3-patch's
  code; none under --no-cache), the interpreter's bytecode magic, the path and
  the patched text. The cache's trust rule is eagle3-patch's usercache.py,
  copied below in the standard library (tests/test_usercache.py checks that
  both agree): every folder from the cache root down and the entry itself must
  be this user's and writable by no one else, checked on the opened descriptor.
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

ENV_VAR = "EAGLE3_PATCH_INMEMORY"
NO_CACHE_ENV = "EAGLE3_PATCH_NO_CACHE"
# A payload longer than one variable continues in ENV_VAR_1, _2, ...: the parent's
# size cap (payload.MAX_PAYLOAD_BYTES) needs 9 at most.
_MAX_PIECES = 16
# How this file and every earlier release of it begins: what marks a bootstrap as ours.
_OPENING = b'"""eagle3-patch\'s in-memory bootstrap'
# Distinct from every eagle3-patch CLI exit code (README, "Exit codes").
EXIT_STALE = 12


def _die(message):
    sys.stderr.write(
        f"eagle3-patch: {message}\n"
        f"eagle3-patch: this process (pid {os.getpid()}) stops here instead of running SGLang "
        "without EAGLE-3 capture. Start it again with `eagle3-patch run -- ...`, so the "
        "installed files are analysed afresh (or patch them: `eagle3-patch apply`).\n")
    sys.stderr.flush()
    os._exit(EXIT_STALE)


# --- the user cache's trust rule: a copy of eagle3_patch/usercache.py ---------------------

_CACHE_FOLDERS = ("eagle3-patch", "bytecode")
_MAX_BYTES = 16 << 20
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_ENTRY_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _ours(info):
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022


def _cache_root():
    root = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(root):
        return root
    # Empty or relative HOME: no cache (never the cwd, never "/"); none: the passwd entry's.
    home = os.environ["HOME"] if "HOME" in os.environ else os.path.expanduser("~")
    return os.path.join(home, ".cache") if os.path.isabs(home) else None


def _trusted(fd):
    if _ours(os.fstat(fd)):
        return fd
    os.close(fd)
    raise PermissionError("not this user's, or writable by others")


def _cache_folder(create):
    """A descriptor of <root>/eagle3-patch/bytecode, each step checked; None: no cache."""
    root = _cache_root()
    if root is None:
        return None
    fd = -1
    try:
        if create:
            os.makedirs(root, mode=0o700, exist_ok=True)
        fd = _trusted(os.open(root, _FOLDER_FLAGS))
        for name in _CACHE_FOLDERS:
            if create:
                try:
                    os.mkdir(name, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
            parent, fd = fd, -1
            try:
                fd = _trusted(os.open(name, _FOLDER_FLAGS | os.O_NOFOLLOW, dir_fd=parent))
            finally:
                os.close(parent)
        return fd
    except OSError:
        if fd >= 0:
            os.close(fd)
        return None


def _cache_read(name):
    folder = _cache_folder(False)
    if folder is None:
        return None
    try:
        fd = os.open(name, _ENTRY_FLAGS, dir_fd=folder)
        try:
            import stat

            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or not _ours(info) or info.st_size > _MAX_BYTES:
                return None
            chunks, size = [], 0
            while size <= _MAX_BYTES:
                chunk = os.read(fd, _MAX_BYTES + 1 - size)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                size += len(chunk)
            return None
        finally:
            os.close(fd)
    except OSError:
        return None
    finally:
        os.close(folder)


def _cache_write(name, data):
    folder = _cache_folder(True)
    if folder is None:
        return
    partial = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.partial"
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=folder)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(partial, name, src_dir_fd=folder, dst_dir_fd=folder)  # tensor-parallel workers race here
    except OSError:
        try:
            os.unlink(partial, dir_fd=folder)
        except OSError:
            pass
    finally:
        os.close(folder)


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
            code = _memoised_code(_cache_read(name))
            if isinstance(code, CodeType):
                return code
        code = compile(self.data, self.path, "exec", dont_inherit=True)
        if name is not None:
            _cache_write(name, _sealed(marshal.dumps(code)))
        return code

    def _memo_name(self):
        if self.cache_key is None or os.environ.get(NO_CACHE_ENV, "") not in ("", "0"):
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


def _checked_entry(entry):
    """One handed-over module as (name, (path, sha256, bytes)); TypeError unless of that shape."""
    fields = [entry["name"], entry["path"], entry["sha256"], entry["data"]]
    if not all(isinstance(field, str) for field in fields):
        raise TypeError(f"a module's name, path, sha256 and data must be strings, not {fields!r:.100}")
    name, path, sha256, data = fields
    return name, (path, sha256, data.encode("latin-1"))


class _PatchedSourceFinder:
    def __init__(self, names, encoded):
        self.names = names
        self.encoded = encoded
        self.modules = None
        self.cache_key = None

    def _entry(self, fullname):
        if self.modules is None:
            import base64
            import gzip
            import json

            # Everything is checked here, where a failure is loud: an exception
            # later, inside the import, is what SGLang's registry swallows. So is
            # any exception here (deep nesting raises RecursionError): each one is
            # a damaged variable, whatever its type.
            try:
                payload = json.loads(gzip.decompress(base64.b64decode(self.encoded)))
                self.cache_key = payload.get("bytecode_key")
                if not (self.cache_key is None or isinstance(self.cache_key, str)):
                    raise ValueError(f"bytecode_key is {self.cache_key!r}")
                self.modules = dict(_checked_entry(entry) for entry in payload["modules"])
            except Exception as exc:
                _die(f"the environment variable {ENV_VAR} is damaged ({type(exc).__name__}: "
                     f"{str(exc)[:200]}).")
        entry = self.modules.get(fullname)
        if entry is None:
            _die(f"the environment variable {ENV_VAR} names {fullname} but carries no source for it.")
        return entry

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
    value = os.environ.get(ENV_VAR)
    # Another installation's bootstrap may have run first (it chained to this one).
    if not value or any(type(f).__name__ == _PatchedSourceFinder.__name__ for f in sys.meta_path):
        return
    names, separator, encoded = value.partition(";")
    if not separator:
        _die(f"the environment variable {ENV_VAR} is damaged (no module names).")
    count, separator, first = encoded.partition(";")
    if separator:  # base64 has no ";": a payload too long for one variable, in `count` pieces
        if not (count.isascii() and count.isdigit() and 1 < int(count) <= _MAX_PIECES):
            _die(f"the environment variable {ENV_VAR} is damaged (a count of {count[:20]!r} pieces).")
        rest = [os.environ.get(f"{ENV_VAR}_{index}") for index in range(1, int(count))]
        missing = [f"{ENV_VAR}_{index}" for index, piece in enumerate(rest, 1) if not piece]
        if missing:
            _die(f"the environment variable {ENV_VAR} says it continues in {int(count) - 1} more, "
                 f"but {missing[0]} is missing or empty.")
        encoded = first + "".join(rest)
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
