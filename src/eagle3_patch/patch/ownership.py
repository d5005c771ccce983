"""What in a model file is ours: the one rule analysis, transform and revert share.

A method is ours when a comment carrying ``MARKER`` is among its leading
lines: the comment and blank lines right above its first line (its first
decorator's), grouped as libcst groups them. ``remove_hooks`` deletes exactly
those lines with the method, so status calls a method ours exactly when revert
removes it (``test_ownership.py`` pins both against libcst's grouping).
Comments indented deeper than the method after a block (a function's body)
end that block, not the method's leading lines, and so do not count.

Lines are numbered as Python numbers them, and removal deletes whole lines of
the text as it is: no parser re-renders what stays, so a form feed in the
indentation (which Python reads as whitespace and libcst loses) or any other
byte that is not ours stays as it was.

``ast`` only: status reads this on a memo miss, where libcst is too slow to import.
"""

from __future__ import annotations

import ast
import functools
import io
import re
import tokenize

from eagle3_patch.patch import sourcetext
from eagle3_patch.patch.hooks import MARKER, HookSpec


def source_lines(text: str, keepends: bool = False) -> list[str]:
    """``text``'s lines as ``ast`` numbers them (``str.splitlines`` also splits at a form
    feed and other separators Python's tokenizer reads as ordinary characters)."""
    if keepends:
        return re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z", text)
    return re.split(r"\r\n|\r|\n", text)


def is_marker_line(line: str) -> bool:
    """A line that is a comment carrying our marker, as far as the line alone tells
    (``marker_lines`` also rules out a line inside a multi-line string)."""
    return line.lstrip().startswith("#") and MARKER in line


def marker_lines(lines: list[str], tree: ast.Module) -> list[int]:
    """The 1-based numbers of every marker comment line (not a line inside a string)."""
    found = [i + 1 for i, line in enumerate(lines) if is_marker_line(line)]
    quoted = _quoted(tree, set(found)) if found else set()
    return [line for line in found if line not in quoted]


def _quoted(node: ast.AST, wanted: set[int]) -> set[int]:
    """The lines of ``wanted`` that lie inside a string literal below ``node`` (a line after a
    multi-line string's first). Only nodes spanning a wanted line are visited: a model file
    has hundreds of thousands of nodes, and a patched one a few marker lines."""
    found = set()
    for child in ast.iter_child_nodes(node):
        end = getattr(child, "end_lineno", None)
        if end is not None and not any(child.lineno <= line <= end for line in wanted):
            continue
        if isinstance(child, (ast.Constant, ast.JoinedStr)):
            found.update(line for line in wanted if child.lineno < line <= end)
        else:
            found |= _quoted(child, wanted)
    return found


def first_line(node: ast.stmt) -> int:
    """A definition's first line: its first decorator's, else its own."""
    return min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])


def starts_logical_line(lines: list[str], node: ast.stmt, previous: ast.stmt | None) -> bool:
    """Whether ``node`` begins a logical line: only whitespace before it on its line, and not
    joined by a backslash to the line of ``previous`` (the statement before it in its body).
    ``lines`` keep their line ends."""
    line = lines[first_line(node) - 1]
    column = min([node.col_offset, *(d.col_offset for d in getattr(node, "decorator_list", ()))])
    if line.encode()[:column].strip(b" \t\x0c"):
        return False
    if previous is None:
        return True
    # Between two statements of one logical line lie only ";", blanks and backslash line ends;
    # a comment ends its line whatever follows it ("# c \\" continues nothing).
    between = "".join([_after(lines[previous.end_lineno - 1], previous.end_col_offset),
                       *lines[previous.end_lineno:first_line(node) - 1]])
    return "#" in between or bool(re.search(r"[\r\n]", re.sub(r"\\(?:\r\n|\r|\n)", "", between)))


def header_continues(lines: list[str], node: ast.ClassDef) -> bool:
    """Whether the class's body continues the logical line of its ``class ...:`` header
    (``class X(B): pass``, or the statement on the next line after ``: \\``): such a body is
    no indented block, and a method indented below it would not parse."""
    header = "".join(lines[node.lineno - 1:first_line(node.body[0])]).replace("\r\n", "\n").replace("\r", "\n")
    tokens = tokenize.generate_tokens(io.StringIO(header).readline)
    depth = 0
    for token in tokens:
        if token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
        elif token.type == tokenize.OP and token.string == ":" and depth == 0:
            after = next(t for t in tokens if t.type not in (tokenize.COMMENT, tokenize.NL))
            return after.type != tokenize.NEWLINE
    raise ValueError(f"class {node.name}: no ':' ends its header")


def _after(line: str, column: int) -> str:
    """``line`` after ``ast``'s ``column`` (a UTF-8 byte offset), with its line end."""
    return line.encode()[column:].decode()


def indentation(line: str) -> str:
    """The whitespace that indents ``line`` as Python counts it: what follows its last form
    feed (Python resets the column there)."""
    return line[:len(line) - len(line.lstrip(" \t\x0c"))].rpartition("\x0c")[2]


def leading_lines(lines: list[str], node: ast.stmt, previous: ast.stmt | None) -> list[int]:
    """The 1-based numbers of ``node``'s leading comment and blank lines (libcst's grouping).

    ``previous`` is the statement before ``node`` in the same body (None for the
    first). After a compound statement, the lines up to its last comment indented
    deeper than ``node`` close that statement's block and are not ``node``'s.
    """
    top = previous.end_lineno + 1 if previous is not None else 0
    found = []
    line = first_line(node) - 1
    while line >= max(top, 1):
        text = lines[line - 1]
        if text.strip() and not text.lstrip().startswith("#"):
            break  # code: the header of the enclosing block, or a continuation
        found.append(line)
        line -= 1
    found.reverse()
    if previous is not None and hasattr(previous, "body"):
        column = len(indentation(lines[first_line(node) - 1]))
        deeper = [n for n in found if lines[n - 1].strip() and len(indentation(lines[n - 1])) > column]
        if deeper:
            found = [n for n in found if n > deeper[-1]]
    return found


def marked(lines: list[str], node: ast.stmt, previous: ast.stmt | None) -> list[int]:
    """The marker lines that make ``node`` ours (empty if it is not)."""
    return [n for n in leading_lines(lines, node, previous) if is_marker_line(lines[n - 1])]


def remove_hooks(source: str, tree: ast.Module | None = None) -> str:
    """``source`` without the methods that are ours and without any other marker comment line.

    Ours are what status calls ours: methods of the top-level classes (the last definition
    of each name) marked in their leading lines; a marker anywhere else is a stray line and
    goes alone. Every other line stays as it is, except that a class left empty gets
    ``pass`` so the file stays Python. ``tree`` is ``ast.parse(source)`` if the caller has it.
    """
    lines = source_lines(source)
    if not any(is_marker_line(line) for line in lines):
        return source
    tree = tree or ast.parse(source)
    with_ends = source_lines(source, keepends=True)
    drop, passes = set(marker_lines(lines, tree)), {}
    for cls in classes(tree).values():
        body = cls.body
        ours = [(node, previous) for node, previous in functions(body) if marked(lines, node, previous)]
        for node, previous in ours:
            drop.update(leading_lines(lines, node, previous), range(first_line(node), node.end_lineno + 1))
        if ours and len(ours) == len(body):
            line = with_ends[first_line(body[0]) - 1]
            passes[first_line(body[0])] = line[:body[0].col_offset] + "pass" + line[len(line.rstrip("\r\n")):]
    if not drop:
        return source
    kept = [passes.get(number, line) for number, line in enumerate(with_ends, 1)
            if number in passes or number not in drop]
    if kept and max(drop) == len(with_ends) and not source.endswith(("\n", "\r")):
        # The last line went, and with it the file's lack of a final line break.
        kept[-1] = kept[-1].rstrip("\r\n")
    return "".join(kept)


def functions(body: list[ast.stmt]) -> list[tuple[ast.FunctionDef, ast.stmt | None]]:
    """Each function defined directly in ``body``, with the statement before it."""
    return [(node, body[i - 1] if i else None) for i, node in enumerate(body)
            if isinstance(node, ast.FunctionDef)]


def own_methods(cls: ast.ClassDef | None, name: str) -> list[ast.FunctionDef]:
    """The class's own definitions of ``name``, in order (the last one wins)."""
    return [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == name] if cls else []


@functools.cache
def _hook_dump(source: str) -> str:
    return ast.dump(ast.parse(source).body[0])


def spec_node(hook: HookSpec) -> ast.FunctionDef:
    """The method ``hook`` injects, parsed."""
    return ast.parse(hook.source).body[0]


def is_hook_source(node: ast.FunctionDef, hook: HookSpec) -> bool:
    """Whether ``node`` is exactly the method this eagle3-patch writes for ``hook``."""
    return ast.dump(node) == _hook_dump(hook.source)


# What "this file does not parse" raises: a bad encoding or coding cookie, a syntax error,
# a NUL byte, and Python's own parser giving up on nesting or length it cannot build a tree
# for (RecursionError, MemoryError): Python could not import such a file either.
PARSE_ERRORS = (UnicodeDecodeError, SyntaxError, ValueError, LookupError, RecursionError, MemoryError)


def parse(data: bytes, filename: str = "<unknown>") -> tuple[str, ast.Module]:
    """A model file's text, decoded as Python decodes it, and its tree; raises one of
    ``PARSE_ERRORS`` where it does not parse."""
    text = sourcetext.decode(data)
    return text, ast.parse(text, filename=filename)


def parse_error_text(exc: BaseException) -> str:
    """What a parse error says; the parser's MemoryError says nothing, so its name stands in."""
    return str(exc) or type(exc).__name__


def unparseable(data: bytes) -> str:
    """Why ``data`` is not a Python file we may judge ("it is empty", ...); empty if it parses."""
    if not data.strip():
        return "it is empty"
    try:
        parse(data)
    except PARSE_ERRORS as exc:
        return f"it is not valid Python ({parse_error_text(exc)})"
    return ""


def classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    """The module's top-level classes by name (the last definition wins)."""
    return {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
