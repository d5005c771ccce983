"""Build the GPU proof's models locally: nothing comes from the Hub.

    python build_models.py OUT      # the plumbing kit (default_kit.py)

Needs torch, transformers (5.2 or later: the first with ``Qwen3_5ForConditionalGeneration``),
safetensors and tokenizers. Prints a JSON summary of what it wrote; the same build gives the same
bytes.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder to build the four model folders in")
    args = parser.parse_args(argv)
    from default_kit import build_all

    json.dump(build_all(args.out), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
