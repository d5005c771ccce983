"""Build the GPU proof's models locally: nothing comes from the Hub.

    python build_models.py OUT                      # the plumbing kit (default_kit.py)
    python build_models.py OUT --kit capture-tiny   # OUT/capture-tiny/{target,drafter-*}
    python build_models.py OUT --kit capture-27b    # OUT/capture-27b/{target,drafter-*}

The capture kits (capture_kit.py) prove that capture delivers the configured layers; the 27B one
has Qwen3.6-27B's real shape in sparse files. Needs torch, transformers (5.2 or later: the first
with ``Qwen3_5ForConditionalGeneration``), safetensors and tokenizers. Prints a JSON summary of
what it wrote; the same build gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import sys

KITS = ("default", "capture-tiny", "capture-27b")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder to build in")
    parser.add_argument("--kit", choices=KITS, default="default",
                        help="default: target-const, target-random, drafter-agree and drafter-random "
                             "directly in OUT; capture-*: OUT/<kit>/ with a target and three drafters")
    args = parser.parse_args(argv)
    if args.kit == "default":
        from default_kit import build_all

        summary = build_all(args.out)
    else:
        from capture_kit import CAPTURE_KITS, build_kit

        summary = build_kit(args.out, CAPTURE_KITS[args.kit])
    json.dump(summary, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
