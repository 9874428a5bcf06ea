"""``capt-defense-study`` (= ``python tools/defense_study.py``): test-time defenses on the embedded world, each under
the non-adaptive attack and the attacks through it, with paired intervals (``promptengine.lab.defenses``).

    capt-defense-study                          # 3 seeds x 64 images per part; about 25 minutes on 2 cores
    capt-defense-study --analyse-only DIR       # the table again from an earlier study's output
    capt-defense-study --size ci                # the same code path at a tiny budget

Every run is a protocol script with the defense's embedded-world recipe (``configs/trainers/<METHOD>/synth.yaml``),
so the study measures what a user runs; finished runs of the same identity are reused. docs/ROBUSTNESS.md shows a
measured output.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional

from ..registry import HOME
from .defenses import PARTS, TTC, analyse, eval_only_command, protocol_jobs, render_attacks, render_table
from .phenomena import trainer_names
from .runs import add_study_options, earlier_output, run_logged, study_environment

SIZES = {
    "full": dict(images=64, extra=[], shots="16"),
    "ci": dict(images=4, extra=["OPTIM.MAX_EPOCH", "1", "ATTACK.TRAIN.STEPS", "1",
                                "DATALOADER.TRAIN_X.BATCH_SIZE", "8"], shots="2"),
}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="capt-defense-study", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--images", type=int, default=0, help="test images per part (default: the size's)")
    ap.add_argument("--output", default="", help="output root (default output/defenses or output/defenses_ci)")
    add_study_options(ap)
    args = ap.parse_args(argv)
    if args.jobs < 1 or args.images < 0:
        ap.error("--jobs must be at least 1 and --images at least 0")
    if args.analyse_only:
        out = earlier_output(args.analyse_only)
        if out is None:
            return 2
    else:
        size = SIZES[args.size]
        extra = ["TEST.MAX_IMAGES", str(args.images or size["images"]), *size["extra"]]
        out = Path(args.output or Path("output") / ("defenses" if args.size == "full" else "defenses_ci")).resolve()
        logs = out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = study_environment(out, " ".join(extra), size["shots"])
        t0 = time.time()

        def protocol(job):
            method, script_args = job
            secs = run_logged(["bash", str(HOME / "scripts" / method / "base2new.sh"), *script_args], env,
                              logs / f"{method}_{'_'.join(script_args)}.txt", HOME)
            return f"{method:7s} base2new {' '.join(script_args):20s} {secs:6.1f} s"

        def evaluation(job):
            defense, part, seed = job
            # --skip-done: train.py reuses a finished evaluation only when its identity is this one's
            cmd = eval_only_command(sys.executable, HOME, out, defense, part, seed, int(size["shots"]), extra)
            secs = run_logged(cmd, env, logs / f"tapt_prompts_{defense}_{part}_{seed}.txt", HOME)
            return f"TAPT prompts behind {defense:4s} {part:4s} seed {seed}  {secs:6.1f} s"

        first = protocol_jobs(args.seeds)
        # the TAPT run's prompts undefended and behind TTC (TEST.DEFENSE takes the registered trainer name)
        then = [(d, p, s) for s in args.seeds for d in ("none", trainer_names()[TTC]) for p in PARTS]
        print(f"Defense study ({args.size}): {len(first) + len(then)} runs, seeds {args.seeds}; output {out}")
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for i, line in enumerate(pool.map(protocol, first), 1):
                print(f"[{i:2d}/{len(first) + len(then)}] {line}", flush=True)
            for i, line in enumerate(pool.map(evaluation, then), len(first) + 1):
                print(f"[{i:2d}/{len(first) + len(then)}] {line}", flush=True)
        print(f"All runs done in {time.time() - t0:.0f} s.\n")
    lines, notes = analyse(out, draws=args.bootstrap)
    print(render_table(lines))
    print(render_attacks(lines))
    for note in notes:
        print(f"note: {note}")
    return 0 if lines else 1


def entry() -> int:
    return main()
