"""``capt-world-phenomena`` (= ``python tools/world_phenomena.py``): the P1-P6 study of the embedded world.

    capt-world-phenomena                        # the study: 3 seeds, under 40 minutes on 2 cores
    capt-world-phenomena --analyse-only DIR     # the table again from an earlier study's output (same --size)
    capt-world-phenomena --size ci              # the same code path at a tiny budget (minutes; no verdicts)
    capt-world-phenomena --coop-epoch-factor 1  # CoOp at its recipe's budget, as CoCoOp and MaPLe (P3 then fails)

Every run is a protocol script (``scripts/<method>/{base2new,xd}.sh``) with the method's embedded-world recipe
(``configs/trainers/<METHOD>/synth.yaml``), so the study measures exactly what a user runs; finished runs of the same
identity are reused. Intervals are 95 % paired bootstrap intervals over seeds x test images
(``promptengine.reporting.intervals``, docs/EXPERIMENTS.md). A row holds when its estimate meets the target and its
interval excludes zero (or the bound) in the stated direction. docs/SYNTH.md shows a measured output.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional

from ..registry import HOME
from .phenomena import COOP_FIELD_FACTOR, STUDY_SIZES, analyse, plan_runs, render_table, study_extra, training_shots
from .runs import add_study_options, earlier_output, run_logged, study_environment


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="capt-world-phenomena", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(STUDY_SIZES), default="full")
    ap.add_argument("--output", default="", help="output root (default output/phenomena or output/phenomena_ci)")
    ap.add_argument("--coop-epoch-factor", type=int, default=COOP_FIELD_FACTOR, metavar="N",
                    help=f"CoOp trains N times its recipe's epochs (default {COOP_FIELD_FACTOR}, the field's "
                         "base-to-new budget against CoCoOp's; 1 = the recipe, as CoCoOp and MaPLe train)")
    add_study_options(ap)
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be at least 1 (got {args.jobs})")
    if args.coop_epoch_factor < 1:
        ap.error(f"--coop-epoch-factor must be at least 1 (got {args.coop_epoch_factor})")
    if args.analyse_only:
        out = earlier_output(args.analyse_only)
        if out is None:
            return 2
    else:
        out = Path(args.output or Path("output") / ("phenomena" if args.size == "full" else "phenomena_ci")).resolve()
        size = STUDY_SIZES[args.size]
        logs = out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = study_environment(out, size["extra"], size["shots"])
        jobs = plan_runs(args.seeds)
        print(f"World phenomena ({args.size}): {len(jobs)} protocol runs, seeds {args.seeds}; output {out}")
        t0 = time.time()

        def one(job):
            method, protocol, script_args = job
            run_env = dict(env, SHOTS=training_shots(method, args.size),
                           EXTRA_OPTS=study_extra(method, args.size, args.coop_epoch_factor))
            secs = run_logged(["bash", str(HOME / "scripts" / method / f"{protocol}.sh"), *script_args], run_env,
                              logs / f"{method}_{protocol}_{'_'.join(script_args)}.txt", HOME)
            return f"{method:7s} {protocol:9s} {' '.join(script_args):60s} {secs:6.1f} s"

        # runs are independent processes of one thread each: as many at once as there are cores to give them
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for i, line in enumerate(pool.map(one, jobs), 1):
                print(f"[{i:2d}/{len(jobs)}] {line}", flush=True)
        print(f"All runs done in {time.time() - t0:.0f} s.\n")
    rows, notes = analyse(out, draws=args.bootstrap, size=args.size, coop_factor=args.coop_epoch_factor)
    print(render_table(rows))
    for note in notes:
        print(f"note: {note}")
    return 0 if rows and all(r.holds for r in rows) else 1


def entry() -> int:
    return main()
