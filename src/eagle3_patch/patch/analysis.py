"""Decide, from source structure alone, what state each hook is in.

Uses ``ast`` only, not libcst (a memo miss of status and check stays off libcst:
benchmarks/README.md). For every hook the method
Python would resolve is found — the class's own definition, else the one it
inherits from ``qwen3_vl.py`` — and probed for its behaviour (``probe.py``).
Version numbers play no part: a backport, a fork or a dev build is judged by
what its code does.

A class is judged only where its module binds the name once, by one class statement
(``judged_class``): SGLang's registry holds the class bound when ``EntryClass`` is
evaluated, a wrapper building its decoder at run time gets the name's last binding, and a
subclass the one bound when its own statement runs. With two bindings these can be
different classes, so such a file is refused rather than judged by one of them.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import NamedTuple

from eagle3_patch.patch import ownership, probe
from eagle3_patch.patch.bindings import Binding, method_rebinds, module_bindings
from eagle3_patch.errors import NotPython, UnjudgeableClass
from eagle3_patch.patch.hooks import CAPTURE_FLAG, DECODER, DECODER_HOOK, HOOKS, METHOD, TARGET_FILES, HookSpec
from eagle3_patch.patch.states import (Analysis, FileReport, HookReport, HookState, State, file_state,
                                 overall_state)


class SourceFile(NamedTuple):
    """One model file: its bytes, as parsed."""

    name: str
    path: str
    data: bytes
    tree: ast.Module
    lines: list[str]
    classes: dict[str, ast.ClassDef]
    bindings: dict[str, list[Binding]]  # "*": the star imports, which may bind any name
    rebinds: tuple[int, ...]            # lines binding a hook's method other than by a def in a class


def parse_source(name: str, path: str, data: bytes) -> SourceFile:
    """Parse one model file; a file that does not parse is refused, untouched."""
    try:
        text, tree = ownership.parse(data, str(path))
    except ownership.PARSE_ERRORS as exc:
        raise NotPython(
            f"{path} is not valid Python, so eagle3-patch will not touch it.",
            f"Parsing failed: {ownership.parse_error_text(exc)}.",
            "Reinstall the release it came from (pip install --force-reinstall --no-deps "
            "sglang==<version>), then run the command again.",
        ) from None
    lines = ownership.source_lines(text)
    return SourceFile(name, path, data, tree, lines, ownership.classes(tree), module_bindings(tree, lines),
                      method_rebinds(tree, text))


def judged_class(files: Mapping[str, SourceFile], file: str, name: str) -> ast.ClassDef | None:
    """The class statement ``name`` is bound to in ``file``; None where ``file`` does not bind
    it, or binds it once by an import. Refuses (``UnjudgeableClass``) any other binding."""
    source = files.get(file)
    if source is None:
        return None
    bindings = [*source.bindings.get(name, ()), *source.bindings.get("*", ())]
    if not bindings or (len(bindings) == 1 and bindings[0].module is not None):
        return None
    if len(bindings) == 1 and bindings[0].node is not None:
        return bindings[0].node
    shown = ", ".join(f"line {b.line} ({b.how})" for b in bindings[:6])
    more = f" and {len(bindings) - 6} more" if len(bindings) > 6 else ""
    raise UnjudgeableClass(
        f"eagle3-patch cannot tell which class {name} in {source.path} is: "
        + ("it is bound more than once." if len(bindings) > 1 else "no class statement run unconditionally binds it."),
        f"{name} is bound at {shown}{more}. SGLang's model registry takes the class bound when `EntryClass` "
        "is evaluated, code that runs later the one bound last, a subclass the one bound when it is defined: "
        "patching or judging one of them could leave SGLang serving another without capture. eagle3-patch "
        "judges a class only where one class statement defines it, and changed nothing.",
        f"Remove the other definitions or assignments of {name} from {source.name}, or put back the file "
        "the release shipped, then run the command again",
    )


def marked_methods(source: SourceFile, cls: ast.ClassDef) -> dict[ast.FunctionDef, list[int]]:
    """The class's own methods that are ours, each with the marker lines that make it so."""
    found = {}
    for node, previous in ownership.functions(cls.body):
        lines = ownership.marked(source.lines, node, previous)
        if lines:
            found[node] = lines
    return found


def _base_name(base: ast.expr) -> str | None:
    if isinstance(base, ast.Name):
        return base.id
    if isinstance(base, ast.Attribute):
        return base.attr
    return None


def _defining_file(files: Mapping[str, SourceFile], file: str, base: ast.expr) -> tuple[str, str] | None:
    """(file, class name) of the class statement a base of a class in ``file`` names, or None:
    ``file``'s own class, else one in the files it may import its bases from (only the module it
    imports that name from, when it imports it)."""
    name = _base_name(base)
    if name is None:
        return None
    if judged_class(files, file, name) is not None:
        return file, name
    source = files[file]
    imported = next((b.module for b in source.bindings.get(name, source.bindings.get("*", ())) if b.module), None)
    for candidate in next((t.bases_from for t in TARGET_FILES if t.name == file), ()):
        if imported is not None and imported.rpartition(".")[2] != candidate.removesuffix(".py"):
            continue
        if judged_class(files, candidate, name) is not None:
            return candidate, name
    return None


def resolve(files: Mapping[str, SourceFile], file: str, cls: str, method: str,
            depth: int = 0) -> tuple[str, ast.FunctionDef] | None:
    """Where Python finds ``cls.method``: ("file:Class", node), or None."""
    node = judged_class(files, file, cls)
    if node is None or depth > 20:
        return None
    source = files[file]
    if method == METHOD and source.rebinds:
        lines = ", ".join(map(str, source.rebinds[:6])) + (" ..." if len(source.rebinds) > 6 else "")
        raise UnjudgeableClass(
            f"eagle3-patch cannot tell what {cls}.{method} is in {source.path}: the file binds {method} "
            f"outside a plain def in a class (line {lines}).",
            f"An assignment, setattr or del of {method}, or a definition of it under a condition in a class "
            "body, can replace the method SGLang calls, whatever the class statement defines; eagle3-patch "
            "judges only a method defined by a def in its class, and changed nothing.",
            f"Remove those statements from {source.name}, or put back the file the release shipped, then run "
            "the command again",
        )
    own = ownership.own_methods(node, method)
    if own:
        return f"{file}:{cls}", own[-1]  # the last definition in a class body wins
    for base in node.bases:
        defined = _defining_file(files, file, base)
        found = resolve(files, *defined, method, depth + 1) if defined else None
        if found:
            return found
    return None


def _decoder_methods(files: Mapping[str, SourceFile], decoder_fallback: bool) -> dict:
    """The decoder methods a wrapper may call, as they are (or will be after apply)."""
    methods = {}
    for name in (METHOD, "set_dflash_layers_to_capture"):
        found = resolve(files, *DECODER, name)
        if found:
            try:
                methods[name] = probe.compile_method(found[1])
            except ValueError:
                continue  # the stand-in decoder then lacks it, as good as broken
    if decoder_fallback:
        methods[METHOD] = probe.compile_method(ownership.spec_node(DECODER_HOOK))
    return methods


def _problem(hook: HookSpec, node: ast.FunctionDef, decoder_methods: dict) -> str | None:
    try:
        function = probe.compile_method(node)
    except (SyntaxError, ValueError, TypeError) as exc:
        return f"does not compile: {exc}"
    if hook.role == "decoder":
        return probe.decoder_problem(function)
    return probe.wrapper_problem(function, decoder_methods)


def _refuse_hiding_overrides(files, hook: HookSpec, decoder_methods: dict) -> None:
    """A subclass SGLang serves too (the MoE decoder) that defines the hook itself hides whatever
    its base has or gets: an override of its own that does not work cannot be patched by us."""
    for sub in hook.inherited_by:
        own = ownership.own_methods(judged_class(files, hook.file, sub), hook.method)
        problem = _problem(hook, own[-1], decoder_methods) if own else None
        if problem:
            path = files[hook.file].path
            raise UnjudgeableClass(
                f"eagle3-patch cannot make capture work for {sub} in {path}: its own "
                f"{hook.method} (line {own[-1].lineno}) does not.",
                f"It {problem}. {sub} inherits from {hook.cls}, which eagle3-patch patches, but a method "
                f"of {sub}'s own hides the one of its base. Nothing was changed.",
                f"Remove that method from {sub}, or put back the file the release shipped, then run the "
                "command again",
            )


def _classify(files, hook: HookSpec, current_decoder: dict, future_decoder: dict) -> HookReport:
    source = files[hook.file]
    cls = judged_class(files, hook.file, hook.cls)
    _refuse_hiding_overrides(files, hook, future_decoder)
    found = resolve(files, hook.file, hook.cls, hook.method)
    marked = [n for n in marked_methods(source, cls) if n.name == hook.method]
    where = found[0] if found else ""
    if marked:
        ours = marked[-1]
        if len(marked) > 1 or found is None or found[1] is not ours:
            return HookReport(hook, HookState.ALTERED, where, "a later definition shadows ours")
        if not ownership.is_hook_source(ours, hook):
            return HookReport(hook, HookState.ALTERED, where,
                              f"the marked method at line {ours.lineno} differs from what this "
                              f"eagle3-patch writes (edited, or written by another version)")
        problem = _problem(hook, ours, current_decoder)
        state = HookState.ALTERED if problem else HookState.PATCHED
        return HookReport(hook, state, where, problem or "")
    if found is None:
        return HookReport(hook, HookState.MISSING, "", "no such method on the class or its bases")
    problem = _problem(hook, found[1], future_decoder)
    if problem:
        return HookReport(hook, HookState.MISSING, where, problem)
    for sub in hook.inherited_by:
        sub_found = resolve(files, hook.file, sub, hook.method)
        if sub_found and sub_found[1] is not found[1]:
            problem = _problem(hook, sub_found[1], future_decoder)
            if problem:
                return HookReport(hook, HookState.MISSING, sub_found[0], f"{sub}: {problem}")
    return HookReport(hook, HookState.NATIVE, where)


def _unsupported_reason(files: Mapping[str, SourceFile]) -> str:
    for target in TARGET_FILES:
        if target.required and target.name not in files:
            return f"there is no sglang/srt/models/{target.name}"
    for hook in HOOKS:
        if hook.file in files and judged_class(files, hook.file, hook.cls) is None:
            return f"{hook.file} has no class {hook.cls}"
    forward = resolve(files, *DECODER, "forward")
    if forward is None or not any(
        (isinstance(n, ast.Constant) and n.value == CAPTURE_FLAG)
        or (isinstance(n, ast.Attribute) and n.attr == CAPTURE_FLAG)
        for n in ast.walk(forward[1])
    ):
        return (f"its decoder {DECODER[0]}:{DECODER[1]} has no per-layer capture "
                f"(its forward never reads {CAPTURE_FLAG})")
    return ""


def analyze(files: Mapping[str, SourceFile]) -> Analysis:
    """The state of every hook, file and of the installation as a whole."""
    reason = _unsupported_reason(files)
    if reason:
        return Analysis(State.UNSUPPORTED, (), reason)
    current = _decoder_methods(files, decoder_fallback=False)
    decoder = _classify(files, DECODER_HOOK, current, current)
    future = current if decoder.state.works else \
        _decoder_methods(files, decoder_fallback=True)
    reports: list[FileReport] = []
    for target in TARGET_FILES:
        if target.name not in files:
            continue
        source = files[target.name]
        hooks = [decoder if (h.file, h.cls) == DECODER else _classify(files, h, current, future)
                 for h in HOOKS if h.file == target.name]
        attached = {line for cls in source.classes.values()
                    for lines in marked_methods(source, cls).values() for line in lines}
        orphans = [line for line in ownership.marker_lines(source.lines, source.tree) if line not in attached]
        reports.append(FileReport(target.name, source.path, file_state({h.state for h in hooks}, bool(orphans)),
                                  tuple(hooks), tuple(orphans)))
    return Analysis(overall_state({report.state for report in reports}), tuple(reports))
