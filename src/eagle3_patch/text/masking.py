"""What is shown of anything we print: secrets hidden, foreign text bounded and escaped. Pure.

One rule for every argv, URL and message a user or a log sees: the value of
an option whose last word ends in key, token, password or secret (``is_secret``),
and a URL's user-info. What a machine re-runs (``--dry-run --json``'s argv) and what is
sent (the bench client's requests) keep the real values; only what is shown
goes through here.

Text from outside (a server's answer, a value read from a file, a long argument) is
shown through ``shown``: a bounded excerpt that says how long the text was, cut before
any pattern reads it, its control characters escaped (``printable``) so that nothing
it carries can act on a terminal. Every pattern here is linear in its input.
"""

from __future__ import annotations

import json
import re

MASK = "***"

_CAMEL_HUMP = re.compile(r"([a-z0-9])([A-Z])")  # apiKey: two words
_SECRET_WORDS = ("key", "token", "password", "passwd", "secret")
# Ordinary words that merely end like a secret word; any other last word that does is
# a secret word run together with its qualifier (apikey, hftoken, dbpassword).
_LOOKALIKES = frozenset({"monkey", "donkey", "turkey", "hockey", "jockey", "whiskey", "lackey",
                         "flunkey", "malarkey", "hotkey", "turnkey", "betoken"})
# A text token, not a credential, where a word places or counts it: SGLang's
# --bucket-time-to-first-token, --kt-max-deferred-experts-per-token.
_TEXT_TOKEN_AFTER = frozenset({"per", "each", "every", "first", "last", "next"})
# SGLang's parser accepts unambiguous abbreviations (argparse allow_abbrev):
# from these lengths on, a prefix names that secret flag alone in every release
# (no other flag starts --ap or --ad; --ssl-keyfile is a flag of its own).
_SECRET_PREFIXES = (
    ("--api-key", len("--ap")),
    ("--admin-api-key", len("--ad")),
    ("--ssl-keyfile-password", len("--ssl-keyfile-")),
)
# scheme://authority (RFC 3986: the authority ends at the first /, ? or #),
# then the rest up to whitespace; user-info is the authority up to its last @,
# as urllib and yarl read it, so what we hide is what they would send. A URL given without
# its scheme ("user:pass@host:30000", "//user:pass@host") still carries credentials.
# A scheme starts at the first letter of a run of scheme characters: the look-behind lets a
# search try each run once, where trying every letter of it made a long word quadratic.
_URL = re.compile(r"(?<![A-Za-z0-9+.-])([0-9+.-]*)([A-Za-z][A-Za-z0-9+.-]*://\S*)")
_USER_INFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://|//)?([^/?#]*)@")
# A name stops at the next "?" too: "????..." made every "?" scan the rest of the URL.
_QUERY_PAIR = re.compile(r"([?&])([^=&#?\s]+)=([^&#\s]*)")
# Foreign text quoted in a message: this many characters of it at most. A whole part of a
# message (what, why, fix) is held to MESSAGE_LIMIT, whatever a caller put in it.
EXCERPT = 200
MESSAGE_LIMIT = 4000
# How far past a cut masking still reads, so a URL cut there keeps its user-info hidden.
_MASK_WINDOW = 2048


def is_secret(name: str) -> bool:
    """Whether the value of option, query parameter or variable ``name`` must not be shown.

    Its last word (``-``, ``_`` or camelCase separated) decides: it ends in a secret word,
    so ``--hf-token``, ``--apikey`` and ``apiKey`` are hidden, while ``--ssl-keyfile``,
    ``--max-total-tokens``, ``--monkey`` and ``--bucket-time-to-first-token`` stay visible.
    """
    words = re.split(r"[-_]+", _CAMEL_HUMP.sub(r"\1-\2", name).strip("-_").lower())
    last = words[-1]
    if last.endswith(_SECRET_WORDS) and last not in _LOOKALIKES:
        return not (last == "token" and len(words) > 1 and words[-2] in _TEXT_TOKEN_AFTER)
    return any(len(name) >= shortest and full.startswith(name) for full, shortest in _SECRET_PREFIXES)


def masked_argv(argv: list[str] | tuple[str, ...]) -> list[str]:
    """``argv`` as shown: secret option values masked (``--flag v`` and ``--flag=v``), URLs through ``masked_url``."""
    shown: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            shown.append(MASK)
            hide_next = False
            continue
        name, eq, _ = arg.partition("=")
        if arg.startswith("--") and is_secret(name):
            if eq:
                shown.append(f"{name}={MASK}")
            else:
                shown.append(arg)
                hide_next = True
            continue
        shown.append(masked_text(arg))
    return shown


def masked_url(url: str) -> str:
    """``url`` as shown: its user-info, and the values of secret query parameters, masked.

    Works on URLs that do not parse too: those end up in error messages.
    """
    url = _USER_INFO.sub(lambda m: f"{m.group(1) or ''}{MASK}@", url, count=1)
    return _QUERY_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}={MASK}" if is_secret(m.group(2)) else m.group(0), url)


def masked_text(text: str) -> str:
    """``text`` (a message) with every URL in it through ``masked_url``."""
    return _URL.sub(lambda m: m.group(1) + masked_url(m.group(2)), text)


def shown(text: str, limit: int = EXCERPT, lines: bool = False) -> str:
    """``text`` from outside as a message quotes it: at most ``limit`` characters of it (its start
    and its end, with how much was left out between them), every URL's user-info masked, and
    control characters escaped; ``lines`` keeps its newlines (a whole message of ours).

    The cut comes first: whatever the length of ``text``, masking reads only the kept ends.
    """
    keep = "\n" if lines else ""
    if len(text) <= limit:
        return printable(masked_text(text), keep)
    tail = limit // 4
    head = limit - tail
    return (f"{printable(_start(text, head), keep)} [...{len(text) - head - tail:,} of {len(text):,} "
            f"characters left out...] {printable(_end(text, tail), keep)}")


def _start(text: str, size: int) -> str:
    """The first ``size`` characters of ``text``, masked. Where the cut falls in a URL's authority,
    all of it after ``//`` goes: its user-info may end past the cut, beyond what masking read."""
    start = masked_text(text[:size + _MASK_WINDOW])[:size]
    token = start.rsplit(maxsplit=1)[-1] if start and not start[-1].isspace() else ""
    scheme_end = token.rfind("://") + 3
    if scheme_end >= 3 and not any(char in token[scheme_end:] for char in "/?#"):
        return start[:len(start) - len(token) + scheme_end] + MASK
    return start


def _end(text: str, size: int) -> str:
    """The last ``size`` characters of ``text``, masked. Where they start inside a word, an
    ``@`` in it before any ``/``, ``?`` or ``#`` may end a user-info whose URL began before the
    part masking read: all of that word up to the ``@`` goes."""
    if size <= 0:
        return ""
    window = masked_text(text[-size - _MASK_WINDOW:])
    end = window[-size:]
    if len(window) > size and not window[-size - 1].isspace() and not end[0].isspace():
        token = end.split(maxsplit=1)[0]
        authority_end = min((at for at in map(token.find, "/?#") if at >= 0), default=len(token))
        user_info_end = token.rfind("@", 0, authority_end)
        if user_info_end >= 0:
            return MASK + end[user_info_end:]
    return end


def shown_json(value: object, limit: int = EXCERPT) -> str:
    """A value read from JSON (a file's field, a server's answer) as a message quotes it: its JSON
    text, so a string "5120" reads as a string, through ``shown``."""
    try:
        text = json.dumps(value)
    except (RecursionError, ValueError):  # nested past the encoder's stack here, or an int past Python's digits
        return f"a JSON {type(value).__name__} too deep or too long to show"
    return shown(text, limit)


def printable(text: str, keep: str = "") -> str:
    """``text`` with every character a terminal could act on or hide written as its Python escape
    (ESC as ``\\x1b``): C0 and C1 controls, DEL, line and paragraph separators, bidirectional and
    other format characters, lone surrogates (which no output encoding takes). Characters in
    ``keep`` stay as they are."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() or char in keep else _escape(char) for char in text)


def _escape(char: str) -> str:
    return repr(char)[1:-1]  # \n, \x1b, \u2028, \ud800: what Python itself would write
