"""What is secret in anything we print, and how it is shown instead. Pure.

One rule for every argv, URL and message a user or a log sees: the value of
an option whose last word ends in key, token, password or secret (``is_secret``),
and a URL's user-info. What a machine re-runs (``--dry-run --json``'s argv) and what is
sent (the bench client's requests) keep the real values; only what is shown
goes through here.
"""

from __future__ import annotations

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
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")
_USER_INFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://|//)?([^/?#]*)@")
_QUERY_PAIR = re.compile(r"([?&])([^=&#\s]+)=([^&#\s]*)")


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
    return _URL.sub(lambda m: masked_url(m.group(0)), text)
