"""The weights catalogue on the command line (``python tools/weights.py``).

    python tools/weights.py list [--markdown]         every catalogued tower, where its file goes and its state
    python tools/weights.py check [NAME ...]          verify the files present (or the named ones); exit 1 on a problem
    python tools/weights.py pin NAME FILE             record the SHA-256 of a copy you verified (pins.json)

``--root DIR`` names the weights root (default: $CLIP_DOWNLOAD_ROOT, else ~/.cache/clip; a run uses
MODEL.BACKBONE.DOWNLOAD_ROOT when set). Nothing here downloads anything.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from ..cli import run_main
from ..errors import UserError
from ..registry import closest
from ..weights.catalogue import Entry, catalogue, lookup
from ..weights.verify import check, destination, read_pins, weights_root, write_pin


def _entry(name: str) -> Entry:
    found = lookup(name)
    if found is None:
        hint = closest(name, list(catalogue()))
        raise UserError(f"'{name}' is not in the weights catalogue ({f'did you mean {hint!r}? ' if hint else ''}"
                        "python tools/weights.py list shows every name)")
    return found


def _checksum(entry: Entry) -> str:
    if entry.sha256:
        return "published by " + entry.sha256_source.split(",")[0].split(" in ")[0]
    return "none published: pin yours" if entry.released and not entry.unusable else "-"


def _loads_as(entry: Entry) -> str:
    if entry.unusable:
        return "not loadable (see below)"
    if not entry.released:
        return "not released"
    return "`--backbone`" if entry.kind == "clip" else f"`--backbone` or `MODEL.BACKBONE.PATH` (over {entry.arch})"


def markdown() -> str:
    """The catalogue as the table and source list docs/WEIGHTS.md shows (a test keeps them equal)."""
    lines = ["| name | tower | loads as | format | file (under the weights root) | size | SHA-256 |",
             "|---|---|---|---|---|---|---|"]
    for e in catalogue().values():
        lines.append(f"| `{e.name}` | {e.title} | {_loads_as(e)} | {e.format} | {e.file or '-'} | {e.size or '-'} | "
                     f"{_checksum(e)} |")
    lines += ["", "Sources, first one first (the one-line error on a missing file names them all):", ""]
    for e in catalogue().values():
        if e.clip_package:  # its URL (and the SHA-256 in it) stays in the clip package, not copied here
            lines.append(f"- `{e.name}`: OpenAI's URL in the installed clip package's download table (clip.load uses it)")
            continue
        for s in e.sources:
            lines.append(f"- `{e.name}`: <{s.url}> ({s.note})")
        if e.unusable:
            lines.append(f"- `{e.name}` is not loadable: {e.unusable}")
    return "\n".join(lines) + "\n"


def cmd_list(root: str, as_markdown: bool) -> int:
    if as_markdown:
        print(markdown(), end="")
        return 0
    pins = read_pins(root)
    print(f"weights root: {root}")
    for e in catalogue().values():
        state = ("not loadable" if e.unusable else "not released" if not e.released else
                 "present" if os.path.isfile(destination(e, root)) else "missing")
        sha = e.sha256 or (pins.get(e.name, {}).get("sha256", "") and f"pinned {pins[e.name]['sha256']}") or "-"
        print(f"{e.name:26s} {e.kind:6s} {e.arch:9s} {state:12s} {e.file or '-':55s} {sha}")
    return 0


def cmd_check(root: str, names: List[str]) -> int:
    """Every named entry, or every present file when none is named; exit 1 when one is missing or differs."""
    entries = [_entry(n) for n in names] if names else [
        e for e in catalogue().values() if e.released and not e.unusable and os.path.isfile(destination(e, root))]
    if not entries:
        print(f"no catalogued file is present under {root} (python tools/weights.py list shows where each goes)")
        return 0
    bad = 0
    for e in entries:
        result = check(e, root)
        bad += not result.usable
        print(f"{result.status}: {result.message}")
    return 1 if bad else 0


def cmd_pin(root: str, name: str, file: str) -> int:
    entry = _entry(name)
    digest = write_pin(entry, file, root)
    print(f"pinned '{name}': sha256 {digest} in {os.path.join(root, 'pins.json')}")
    dest = destination(entry, root)
    if os.path.abspath(os.path.expanduser(file)) != dest:
        print(f"runs load it from {dest}: put this file there")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="", help="weights root (default: $CLIP_DOWNLOAD_ROOT, else ~/.cache/clip)")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="every catalogued tower")
    listing.add_argument("--markdown", action="store_true", help="the table of docs/WEIGHTS.md")
    checking = sub.add_parser("check", help="verify the files present, or the named ones")
    checking.add_argument("names", nargs="*")
    pinning = sub.add_parser("pin", help="record the SHA-256 of a copy you verified")
    pinning.add_argument("name")
    pinning.add_argument("file")
    args = parser.parse_args(argv)
    root = weights_root(args.root)
    if args.command == "list":
        return cmd_list(root, args.markdown)
    if args.command == "check":
        return cmd_check(root, args.names)
    return cmd_pin(root, args.name, args.file)


def entry() -> int:
    return run_main(main)


if __name__ == "__main__":
    sys.exit(entry())
