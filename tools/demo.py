"""The one-command demo: six methods side by side on the embedded world, clean and under PGD.

    bash scripts/demo.sh               # full size (two runs at once, one thread each, on 2 CPU cores)
    bash scripts/demo.sh --size ci     # the same code path at a tiny budget (CI)

Runs the protocol scripts (``scripts/<method>/{base2new,xd,dg}.sh``) for zero-shot CLIP, CoOp, APT, FAP, MaPLe and
CAPT on the synthetic world with SynthCLIP, then prints the comparison tables of ``tools/compare.py`` and writes plots.
Each run's full log goes to ``<output>/demo_logs/``; one progress line per run is printed here.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Tuple

from promptengine.lab.runs import run_logged, study_environment
from promptengine.protocols.layout import TRANSFER_PROTOCOLS

REPO = Path(__file__).resolve().parents[1]
METHODS = ("zsclip", "coop", "apt", "fap", "maple", "capt")
SIZES = {
    # EXTRA_OPTS appended to every run: test subset, attack steps and training budget per size
    "full": "TEST.MAX_IMAGES 400 ATTACK.TEST.STEPS 10",
    "ci": ("TEST.MAX_IMAGES 24 ATTACK.TEST.STEPS 2 ATTACK.TRAIN.STEPS 1 OPTIM.MAX_EPOCH 1 "
           "DATALOADER.TRAIN_X.BATCH_SIZE 8"),
}
SHOTS = {"full": "16", "ci": "2"}
PROTOCOLS = (
    ("base2new", ["synth_shapes", "1"]),
    ("xd", ["1", "synth_glyphs", "synth_patterns", "synth_counts", "synth_fills"]),
    ("dg", ["1", "synth_shapes_sketch", "synth_shapes_clutter"]),
)


Job = Tuple[str, str, List[str]]  # (method folder, protocol, script arguments)


def chains(jobs: List[Job]) -> List[List[Job]]:
    """The runs grouped so that runs sharing a trained model go one after the other: a method's transfer protocols
    (cross-dataset, domain shift) reuse one source model (the first trains it), so they form one chain; every other
    run is its own."""
    out: List[List[Job]] = []
    transfer = {}
    for job in jobs:
        method, protocol, _ = job
        if protocol not in TRANSFER_PROTOCOLS:
            out.append([job])
        elif method in transfer:
            transfer[method].append(job)
        else:
            transfer[method] = [job]
            out.append(transfer[method])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--output", default="", help="output root (default output/demo or output/demo_ci)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each (default 2)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be at least 1 (got {args.jobs})")
    out = Path(args.output or REPO / "output" / ("demo" if args.size == "full" else "demo_ci")).resolve()
    logs = out / "demo_logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = study_environment(out, SIZES[args.size], SHOTS[args.size])
    # the ci size keeps the same code path but runs the transfer protocols for CAPT only (process start-up dominates)
    jobs = [(m, p, a) for p, a in PROTOCOLS for m in args.methods if p == "base2new" or args.size == "full" or m == "capt"]
    if args.size == "ci":  # the same code path with two targets per transfer protocol
        jobs = [(m, p, a if p == "base2new" else a[:3]) for m, p, a in jobs]
    print(f"Demo ({args.size}): {len(jobs)} protocol runs ({', '.join(args.methods)}) on the embedded world; output {out}")
    t0 = time.time()
    done = []

    def one_chain(chain: List[Job]) -> None:
        for method, protocol, extra in chain:
            secs = run_logged(["bash", str(REPO / "scripts" / method / f"{protocol}.sh"), *extra], env,
                              logs / f"{method}_{protocol}.txt", REPO)
            done.append(method)
            print(f"[{len(done):2d}/{len(jobs)}] {method:7s} {protocol:9s} {secs:6.1f} s", flush=True)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(one_chain, chains(jobs)))
    print(f"All runs done in {time.time() - t0:.0f} s.\n")
    plots = out / "plots"
    for protocol, _ in PROTOCOLS:
        subprocess.call([sys.executable, str(REPO / "tools" / "compare.py"), str(out), "--protocol", protocol,
                         "--plots", str(plots)], cwd=REPO)
    print(f"\nPlots: {plots}  |  per-run logs: {logs}  |  tables again: python tools/compare.py {out} --protocol all")
    print("Synthetic world, tiny CLIP: these numbers show the pipeline and relative behaviour, not paper results "
          "(README, 'The demo').")
    return 0


if __name__ == "__main__":
    sys.exit(main())
