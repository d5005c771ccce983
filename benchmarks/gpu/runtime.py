"""The runtime wheel set for SGLang 0.5.12 on the GPU machine: resolve it, fetch it, carry it.

The GPU machine (see ../../README.md, "Verified on a GPU") has Python 3.12 with torch 2.11.0 and
no network. Everything SGLang needs beyond that image travels as files, at most 64 MiB a call.

    python runtime.py resolve  # image-packages.json -> runtime-0.5.12.txt (needs a Python 3.12)
    python runtime.py fetch DIR  # runtime-0.5.12.txt -> DIR/site (trimmed) -> DIR/carry/part-*/

``resolve`` lets pip decide: in a Python 3.12 venv that holds a stub dist-info (name and
version only) for every package of the image, ``pip install --dry-run --report`` keeps what the
image has wherever SGLang accepts it and lists the rest, with the exact wheels and their hashes.
``fetch`` downloads exactly those wheels (``--require-hashes``), installs them into one folder,
removes the files the runs never load (TRIM), and splits one xz-compressed tar of it into parts
that each fit one call. On the GPU machine: ``cat parts | xz -d | tar -x -C /tmp/site``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
LOCK = os.path.join(HERE, "runtime-0.5.12.txt")
IMAGE_PACKAGES = os.path.join(HERE, "image-packages.json")
REQUIREMENTS = ["sglang==0.5.12", "libcst"]  # libcst: eagle3-patch's own, not in the image

# Resolved, but never carried. Each reason was checked, not assumed: the GPU record's import
# trace (RESULTS.md) lists every distribution the launches imported, and none of these is there.
EXCLUDED = {
    "kernels": "breaks `import transformers` 5.6.0 (ValueError: Either a revision or a version must be specified)",
    "flashinfer-cubin": "361 MB of prebuilt FlashInfer kernels; the runs use --attention-backend triton",
    "tilelang": "not imported by these launches",
    "z3-solver": "not imported by these launches",
    "cuda-tile": "not imported by these launches",
    "tokenspeed-triton": "not imported by these launches",
    "nvidia-cutlass-dsl-libs-base": "not imported by these launches",
    "flash-attn-4": "not imported by these launches",
    "torchao": "not imported by these launches",
    "torchcodec": "not imported by these launches (video decoding)",
}

# Files inside carried packages that these runs never load; the import trace confirms it.
TRIM = [
    "sgl_kernel/flash_ops.abi3.so",  # 1 GB of FlashAttention-3 ops: loaded only by the fa3 backend
    "sgl_kernel/flashmla_ops.abi3.so",  # MLA attention (DeepSeek models)
    "sgl_kernel/sm100/*",  # Blackwell build; sgl_kernel loads sm90/ on a Hopper GPU
    "sgl_kernel/sm90/*.a",  # static libraries: link-time only
    "bin/*",  # console scripts of the carried packages
]

PLATFORMS = [
    "manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64",
]
PART_BYTES = 46 * 2**20  # three parts of ~46 MiB: each call carries one, beside the working tree

_LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+) --hash=sha256:(?P<sha>[0-9a-f]{64})$")


def parse_lock(text: str) -> list[tuple[str, str, str]]:
    """``(name, version, sha256)`` per requirement; any other non-comment line is an error."""
    rows = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ValueError(f"line {number} is not `name==version --hash=sha256:<64 hex>`: {raw!r}")
        rows.append((match["name"], match["version"], match["sha"]))
    return rows


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve(python312: str, image_packages: str = IMAGE_PACKAGES, lock: str = LOCK) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        venv = os.path.join(tmp, "venv")
        subprocess.run([python312, "-m", "venv", venv], check=True)
        py = os.path.join(venv, "bin", "python")
        site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
        with open(image_packages, encoding="utf-8") as handle:
            image = json.load(handle)
        for package in image:
            if _canonical(package["name"]) == "pip":
                continue
            folder = os.path.join(site, f"{re.sub(r'[-_.]+', '_', package['name'])}-{package['version']}.dist-info")
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, "METADATA"), "w", encoding="utf-8") as handle:
                handle.write(f"Metadata-Version: 2.1\nName: {package['name']}\nVersion: {package['version']}\n")
        report = os.path.join(tmp, "report.json")
        subprocess.run([py, "-m", "pip", "install", "--dry-run", "--only-binary=:all:", "--quiet",
                        "--report", report, *REQUIREMENTS], check=True)
        with open(report, encoding="utf-8") as handle:
            installs = json.load(handle)["install"]
    kept, excluded = [], []
    for item in installs:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        sha = item["download_info"]["archive_info"]["hashes"]["sha256"]
        reason = EXCLUDED.get(_canonical(name))
        if reason:
            excluded.append(f"# {name}=={version}: {reason}")
        else:
            kept.append(f"{name}=={version} --hash=sha256:{sha}")
    header = [
        "# SGLang 0.5.12's runtime beyond the GPU image (Python 3.12, torch 2.11.0+cu130), plus libcst.",
        "# Made by `python runtime.py resolve` from image-packages.json; fetched by `runtime.py fetch`.",
        "# Resolved but not carried:",
    ]
    with open(lock, "w", encoding="utf-8") as handle:
        handle.write("\n".join(header + sorted(excluded) + sorted(kept, key=str.lower)) + "\n")


def trim(site: str) -> list[str]:
    """Remove TRIM's files from an installed tree; returns what went, relative to ``site``."""
    removed = []
    for root, _, files in os.walk(site):
        for name in files:
            relative = os.path.relpath(os.path.join(root, name), site)
            if any(fnmatch.fnmatch(relative, pattern) for pattern in TRIM):
                os.remove(os.path.join(root, name))
                removed.append(relative)
    # Folders the trim emptied go too (sm100/), deepest first; a folder the wheel shipped empty stays.
    emptied = {os.path.dirname(os.path.join(site, relative)) for relative in removed}
    for folder in sorted(emptied, key=len, reverse=True):
        while folder != site and not os.listdir(folder):
            os.rmdir(folder)
            folder = os.path.dirname(folder)
    return sorted(removed)


def pack(site: str, carry: str, part_bytes: int = PART_BYTES) -> list[str]:
    """One ``tar | xz`` of ``site`` split into ``carry/part-N/site.tar.xz.N``; returns the files."""
    shutil.rmtree(carry, ignore_errors=True)
    os.makedirs(carry)
    archive = os.path.join(carry, "site.tar.xz")
    with open(archive, "wb") as out:
        tar = subprocess.Popen(["tar", "-C", site, "--sort=name", "--mtime=@0", "--owner=0", "--group=0",
                                "-cf", "-", "."], stdout=subprocess.PIPE)
        with tar.stdout:
            subprocess.run(["xz", "-T0", "-6", "-c"], stdin=tar.stdout, stdout=out, check=True)
        if tar.wait() != 0:
            raise RuntimeError("tar failed")
    parts = []
    with open(archive, "rb") as handle:
        index = 0
        while chunk := handle.read(part_bytes):
            folder = os.path.join(carry, f"part-{index}")
            os.makedirs(folder)
            path = os.path.join(folder, f"site.tar.xz.{index}")
            with open(path, "wb") as out:
                out.write(chunk)
            parts.append(path)
            index += 1
    os.remove(archive)
    return parts


def fetch(dest: str, lock: str = LOCK) -> None:
    wheels, site = os.path.join(dest, "wheels"), os.path.join(dest, "site")
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    target = ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp", *platforms]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--quiet",
                    *target, "-d", wheels, "-r", lock], check=True)
    shutil.rmtree(site, ignore_errors=True)
    with open(lock, encoding="utf-8") as handle:
        pinned = {(_canonical(n), v) for n, v, _ in parse_lock(handle.read())}
    chosen = [os.path.join(wheels, w) for w in sorted(os.listdir(wheels))
              if (_canonical(w.split("-")[0]), w.split("-")[1]) in pinned]
    if len(chosen) != len(pinned):
        raise SystemExit(f"{len(pinned)} wheels pinned, {len(chosen)} found in {wheels}")
    # The wheels were chosen for Python 3.12 above; pip would check Requires-Python against
    # the interpreter running it instead.
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--quiet",
                    "--ignore-requires-python", *target, "--target", site, *chosen], check=True)
    removed = trim(site)
    print(f"trimmed {len(removed)} files: {', '.join(removed[:8])}{' ...' if len(removed) > 8 else ''}")
    for path in pack(site, os.path.join(dest, "carry")):
        print(f"{os.path.getsize(path) / 2**20:6.1f} MiB  {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    res = sub.add_parser("resolve", help="write runtime-0.5.12.txt from image-packages.json")
    res.add_argument("--python", required=True, help="a CPython 3.12 to resolve with (the image's Python)")
    got = sub.add_parser("fetch", help="download, install, trim and split the wheel set")
    got.add_argument("dest", help="folder for wheels/, site/ and carry/part-N/")
    args = parser.parse_args(argv)
    if args.command == "resolve":
        resolve(args.python)
    else:
        fetch(args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
