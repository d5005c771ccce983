"""The exact process ``serve`` hands over to: argv and the environment variables we add. Pure."""

from __future__ import annotations

from eagle3_patch.site.handoff import LaunchPlan
from eagle3_patch.serve.dialect import RADIX_FLAG, SCHEDULER_FLAG, LaunchDialect

# The drafter card's validated chain config (topk 4 trees raise the accept
# length but are throughput-neutral on this hybrid target). None = boolean switch.
CHAIN_CONFIG: tuple[tuple[str, str | None], ...] = (
    ("--speculative-algorithm", "EAGLE3"),
    ("--speculative-num-steps", "3"),
    ("--speculative-eagle-topk", "1"),
    ("--speculative-num-draft-tokens", "4"),
)
HYBRID_CACHE_STRATEGY = "extra_buffer"
RUNTIME_CONFIG: tuple[tuple[str, str | None], ...] = (
    ("--mm-attention-backend", "sdpa"),
    ("--dtype", "bfloat16"),
    ("--trust-remote-code", None),
)

# Other names SGLang accepts for a flag we set: passing any of them overrides ours.
FLAG_ALIASES: dict[str, frozenset[str]] = {
    "--model-path": frozenset({"--model"}),
    "--speculative-draft-model-path": frozenset({"--speculative-draft-model"}),
    RADIX_FLAG: frozenset({SCHEDULER_FLAG}),
    SCHEDULER_FLAG: frozenset({RADIX_FLAG}),
}
# SGLang's parser accepts unambiguous abbreviations (argparse allow_abbrev): for each flag
# whose value serve reads or guards, the shortest prefix that no other flag of any supported
# release starts with (tests/test_serve_plan.py proves it against every release's flags). A
# shorter prefix is ambiguous with a sibling flag (--speculative-draft-model-revision,
# --model-impl, --reasoning-parser) and SGLang refuses it itself.
SHORTEST_PREFIX: dict[str, int] = {
    "--speculative-draft-model-path": len("--speculative-draft-model-p"),
    "--model-path": len("--model-p"),
    "--revision": len("--rev"),
}
# Flags that would replace what serve validated, with the serve option to use instead.
VALIDATED_FLAGS: dict[str, str] = {
    "--speculative-draft-model-path": "--drafter",
    "--model-path": "--model",
}


def build_plan(
    python: str, model: str, drafter: str, dialect: LaunchDialect, user_args: list[str] | tuple[str, ...]
) -> LaunchPlan:
    """Our launch flags, minus any the user passes after ``--`` (theirs win), then theirs verbatim."""
    ours: list[tuple[str, str | None]] = [
        ("--model-path", model),
        CHAIN_CONFIG[0],
        ("--speculative-draft-model-path", drafter),
        *CHAIN_CONFIG[1:],
        (dialect.strategy_flag, HYBRID_CACHE_STRATEGY),
        *RUNTIME_CONFIG,
    ]
    given = user_flags(user_args)
    argv = [python, "-m", "sglang.launch_server"]
    for flag, value in ours:
        if given & ({flag} | FLAG_ALIASES.get(flag, frozenset())):
            continue
        argv.append(flag)
        if value is not None:
            argv.append(value)
    argv.extend(user_args)
    return LaunchPlan(argv=argv, env=dict(dialect.env))


def user_flags(user_args: list[str] | tuple[str, ...]) -> set[str]:
    """Long-option names in ``user_args``, whether written ``--flag value`` or ``--flag=value``."""
    return {arg.split("=", 1)[0] for arg in user_args if arg.startswith("--") and arg != "--"}


def names_flag(name: str, flag: str) -> bool:
    """Whether SGLang reads the option ``name`` (as typed, without ``=value``) as ``flag``:
    the flag itself, another name for it, or an abbreviation its parser expands to it."""
    if name in {flag, *FLAG_ALIASES.get(flag, ())}:
        return True
    return len(name) >= SHORTEST_PREFIX.get(flag, len(flag)) and flag.startswith(name)


def flag_value(user_args: list[str] | tuple[str, ...], flag: str) -> str | None:
    """The last value given to ``flag`` in ``user_args`` (``--flag v`` or ``--flag=v``, any
    spelling ``names_flag`` accepts), as argparse keeps it."""
    value = None
    for at, arg in enumerate(user_args):
        if arg == "--":
            break  # argparse reads everything after it as positional
        name, eq, given = arg.partition("=")
        if not arg.startswith("--") or not names_flag(name, flag):
            continue
        if eq:
            value = given
        elif at + 1 < len(user_args):
            value = user_args[at + 1]
    return value


def validated_by(flag: str) -> str | None:
    """The serve option to use instead when SGLang would read ``flag`` as a path serve validated."""
    for full, option in VALIDATED_FLAGS.items():
        if names_flag(flag, full):
            return option
    return None
