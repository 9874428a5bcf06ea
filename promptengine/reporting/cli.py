"""Command lines of ``tools/parse_test_res.py`` (log-based, CoOp-compatible) and ``tools/compare.py`` (results.json)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, TextIO

from ..errors import UserError
from ..protocols.layout import LAYOUT
from . import aggregate, logs, plots, selection, significance, tables
from .bootstrap import Simulator
from .grid import Grid
from .intervals import DEFAULT_DRAWS, MIN_DRAWS
from .results import TABLES, load_results
from .stats import ci95, mean, pstd
from .tradeoff import collect_points, plot_tradeoff

# ----------------------------------------------------------------------------------------------------------------
# parse_test_res


def natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def run_dirs(directory: Path) -> List[Path]:
    """Non-hidden subfolders (seed dirs) in natural order; the folder itself when it is a run folder (it holds logs
    and none of its subfolders does, e.g. only ``tensorboard/`` and checkpoint folders)."""
    subdirs = [p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if logs.list_logs(directory) and not any(logs.list_logs(p) for p in subdirs):
        return [directory]
    return sorted(subdirs, key=lambda p: natural_key(p.name))


def identity_group(run_dir: Path) -> Optional[str]:
    """The run's identity without the seed (``group`` in identity.json), or None for runs recorded without one."""
    try:
        data = json.loads((run_dir / "identity.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("group") if isinstance(data, dict) else None


def parse_directory(directory: Path, keyword: str, end_signals: Sequence[str], use_ci95: bool, out: TextIO) -> Dict[str, float]:
    """Print one line per seed folder and the summary block; return the mean of each metric.

    Seed folders of different run identities (minus the seed) are never averaged together: each gets its own
    summary block and a warning, and nothing is returned for an average over experiments.
    """
    if not directory.is_dir():
        raise UserError(f"{directory} is not a directory; pass the folder that holds the seed folders")
    dirs = run_dirs(directory)
    groups: Dict[Optional[str], Dict[str, List[float]]] = {}
    for run_dir in dirs:
        result = logs.read_run(run_dir, keyword, end_signals)
        if result is None:
            if logs.list_logs(run_dir):
                wanted = "a robust_accuracy line" if keyword == logs.ROBUST_KEYWORD else f'"* {keyword}:"'
                why = f'no log with "{end_signals[0]}" followed by {wanted}'
            else:
                why = "no log.txt (is this a seed folder?)"
            print(f"file: {run_dir}. missing: {why}. ", file=out)
            continue
        msg = f"file: {result.path}. "
        values = groups.setdefault(identity_group(run_dir), {})
        for key, value in result.values.items():
            msg += f"{key}: {value:.2f}%. "
            values.setdefault(key, []).append(value)
        print(msg, file=out)
    if not groups:
        raise UserError(
            f"nothing found in {directory}: no subfolder has a complete log (pass the folder that holds the seed "
            f'folders; use --test-log for eval-only runs, whose logs have no "Finish training")'
        )
    if len(groups) > 1:
        print(f"warning: {directory} holds runs of {len(groups)} different identities (other settings, not only other "
              "seeds, or runs recorded without an identity); they are summarised separately, never averaged",
              file=sys.stderr)
    means: Dict[str, float] = {}
    for group, values in groups.items():
        tag = f" [identity group {group}]" if len(groups) > 1 and group else ""
        print("===", file=out)
        print(f"Summary of directory: {directory}{tag}", file=out)
        for key, vals in values.items():
            spread = ci95(vals) if use_ci95 else pstd(vals)
            count = f" (n={len(vals)} of {len(dirs)})" if len(vals) < len(dirs) else ""
            means[key] = mean(vals)
            print(f"* {key}: {means[key]:.2f}% +- {spread:.2f}%{count}", file=out)
        print("===", file=out)
    return means if len(groups) == 1 else {}


def parse_test_res_main(argv: Optional[Sequence[str]] = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="parse_test_res.py",
        description="Mean +- std over seed folders of the clean and robust accuracies printed in log.txt "
        "(newest complete log of each folder, reruns included).",
    )
    parser.add_argument("directory", type=Path, help="folder whose subfolders are seed folders (seed1, seed2, ...)")
    parser.add_argument("--ci95", action="store_true", help="print 1.96*std/sqrt(n) instead of the std")
    parser.add_argument("--test-log", action="store_true", help='eval-only logs: read after "=> result"')
    parser.add_argument("--multi-exp", action="store_true", help="each subfolder is an experiment of seed folders")
    parser.add_argument(
        "--keyword",
        default="accuracy",
        help="metric of '* <keyword>: X%%' (default accuracy); robust_accuracy reads only the robust lines",
    )
    args = parser.parse_args(argv)
    signals = logs.TEST_END_SIGNALS if args.test_log else logs.TRAIN_END_SIGNALS
    try:
        if not args.multi_exp:
            parse_directory(args.directory, args.keyword, signals, args.ci95, out)
            return 0
        if not args.directory.is_dir():
            raise UserError(f"{args.directory} is not a directory")
        final: Dict[str, List[float]] = {}
        experiments = sorted(
            (p for p in args.directory.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: natural_key(p.name),
        )
        for exp in experiments:
            try:
                means = parse_directory(exp, args.keyword, signals, args.ci95, out)
            except UserError as exc:
                print(f"warning: {exc}", file=sys.stderr)
                continue
            for key, value in means.items():
                final.setdefault(key, []).append(value)
        if not final:
            raise UserError(f"nothing found in any experiment folder of {args.directory}")
        print("Average performance", file=out)
        for key, vals in final.items():
            count = f" (n={len(vals)} of {len(experiments)})" if len(vals) < len(experiments) else ""
            print(f"* {key}: {mean(vals):.2f}%{count}", file=out)
        return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


# ----------------------------------------------------------------------------------------------------------------
# compare


def _tradeoff(root: Path, out_dir: Path, out: TextIO) -> int:
    plots.require_matplotlib()
    points, warnings = collect_points(root)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for p in points:
        hm = p.summary("HM")
        shown = f"clean {hm[0]:.2f}, robust {hm[1]:.2f}" if hm else "no base+new pair"
        print(f"{p.series}{' ' + p.value if p.value else ''}: HM {shown} ({len(p.per_seed('HM'))} seeds)", file=out)
    print(f"wrote {plot_tradeoff(points, Path(out_dir) / 'tradeoff.png')}", file=sys.stderr)
    return 0


def _pairwise(grids: List[Grid], ref: str, sim: Simulator) -> List[Grid]:
    out = [p for p in (significance.pairwise_grid(g, ref, sim, aggregate.TITLES[g.protocol]) for g in grids)
           if p is not None]
    if not out:
        rows = sorted({r for g in grids for r in g.rows})
        raise UserError(f"--pairwise {ref}: no such method in the tables; choose one of {', '.join(rows)}")
    return out


def compare_main(argv: Optional[Sequence[str]] = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="compare.py",
        description="Side-by-side tables (and plots) of every results.json under an output root: base2new, "
        "fewshot, xd and dg, clean and robust, the mean over seeds with its 95%% interval over seeds and test images. "
        "See docs/EXPERIMENTS.md.",
    )
    parser.add_argument("root", type=Path, help="output root (or any folder inside it)")
    parser.add_argument("--protocol", choices=TABLES + ("all",), default="all",
                        help="runs: results.json files outside the protocol layout (plain train.py runs)")
    parser.add_argument("--format", choices=tables.FORMATS, default="terminal")
    parser.add_argument("--layout", choices=tables.LAYOUTS, help="wide: datasets as columns; long: as row groups")
    parser.add_argument("--out", type=Path, help="write the tables to this file instead of stdout")
    parser.add_argument("--plots", type=Path, metavar="DIR", help="write PNG plots into DIR (needs matplotlib)")
    parser.add_argument("--plot", choices=("tradeoff",), help="tradeoff: only the clean-vs-robust trade-off of the "
                        "base2new runs and sweep points under ROOT, written to DIR/tradeoff.png (default DIR: ROOT)")
    parser.add_argument("--trainers", nargs="+", metavar="NAME", help="rows to keep, in order (TRAINER or TRAINER/CFG)")
    parser.add_argument("--datasets", nargs="+", metavar="NAME", help="datasets to keep, in order (class names)")
    parser.add_argument("--seeds", nargs="+", type=int, help="expected seeds (default: every seed found)")
    parser.add_argument(
        "--partial-averages",
        action="store_true",
        help="average over the datasets present when some are missing, marked [k/N] (default: missing)",
    )
    parser.add_argument("--pairwise", metavar="REF", help="instead of the tables: each method's difference to the "
                        "method REF (a row label, e.g. ZeroshotCLIP) with its paired 95%% interval")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_DRAWS, metavar="N",
                        help=f"bootstrap draws per interval (default {DEFAULT_DRAWS}; at least {MIN_DRAWS})")
    args = parser.parse_args(argv)
    try:
        if args.bootstrap < MIN_DRAWS:
            raise UserError(f"--bootstrap {args.bootstrap}: at least {MIN_DRAWS} draws are needed for a 95% "
                            f"interval (default {DEFAULT_DRAWS})")
        if args.plots is not None:
            plots.require_matplotlib()
        if not args.root.is_dir():
            raise UserError(f"{args.root} is not a directory; pass the output root of the protocol scripts")
        if args.plot == "tradeoff":
            return _tradeoff(args.root, args.plots or args.root, out)
        report = load_results(args.root)
        for warning in report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        protocols = TABLES if args.protocol == "all" else (args.protocol,)
        selections = []
        for protocol in protocols:
            sel = selection.select(protocol, report.runs, args.trainers, args.datasets, args.seeds)
            if sel is not None:
                selections.append(sel)
                for note in sel.notes:
                    if note.startswith("Warning:"):
                        print(f"warning: {note[len('Warning: '):]}", file=sys.stderr)
        if not selections:
            where = "" if args.protocol == "all" else f" for protocol {args.protocol}"
            raise UserError(
                f"no results.json{where} under {args.root} (after filters); expected "
                f"<root>/{LAYOUT}/results.json"
            )
        sim = Simulator(args.bootstrap)
        grids = {s.protocol: aggregate.build_grids(s, args.partial_averages, args.layout, simulator=sim,
                                                   intervals=not args.pairwise) for s in selections}
        shown = [g for s in selections for g in grids[s.protocol]]
        if args.pairwise:
            shown = _pairwise(shown, args.pairwise, sim)
        text = tables.render(shown, args.format, args.layout)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text, encoding="utf-8")
            print(f"wrote {args.out}", file=sys.stderr)
        else:
            out.write(text)
        if args.plots is not None:
            for path in plots.write_plots(selections, grids, args.plots):
                print(f"wrote {path}", file=sys.stderr)
        return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
