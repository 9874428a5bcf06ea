"""``tools/sweep.py {run,status,collect}``: the sweep runner's command line (docs/EXPERIMENTS.md).

``script`` is how ``scripts/lib/protocol.sh`` hands a protocol or comparison call to a launcher when ``LAUNCHER`` or
``JOBS`` is set: the call's runs become the points of a one-off grid.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from ..cli import run_main
from ..errors import UserError
from ..protocols.layout import BASE2NEW, FEWSHOT, PROTOCOLS, SPECS, TARGET_PROTOCOLS
from ..protocols.methods import method_protocols, method_table, resolve_method
from ..protocols.runs import DEFAULT_SEEDS, words
from ..protocols.worlds import default_datasets
from ..registry import HOME
from .checks import check_run_configs
from .grid import build_grid, expand, read_grid_file, script_env
from .launchers import LAUNCHERS, SLURM_KEYS, Launch, cap_jobs, default_threads, launch
from .lock import hold_sweep
from .plan import chains, point_runs, resolve_methods
from .state import SweepState
from .status import format_status, sweep_status


def add_grid_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", nargs="?", help="grid YAML file (axes, env, slurm settings); flags replace its axes")
    parser.add_argument("--name", help="sweep name (default: the grid file's name, else 'sweep')")
    parser.add_argument("--state", help="the sweep's state folder (default: $OUTPUT/.sweeps/<name>)")
    for axis in ("protocols", "methods", "datasets", "seeds", "shots"):
        parser.add_argument(f"--{axis}", nargs="+", help=f"the grid's {axis} (replace the file's)")


def state_folder(args: argparse.Namespace, env: Dict[str, str], name: str) -> SweepState:
    return SweepState(args.state or os.path.join(env["OUTPUT"], ".sweeps", name))


def locate_state(args: argparse.Namespace) -> SweepState:
    """status/collect: the --state folder, else the one ``run`` used for the same grid file, name and OUTPUT."""
    if args.state:
        return SweepState(args.state)
    data = read_grid_file(args.grid)
    name = args.name or data.get("name") or (Path(args.grid).stem if args.grid else "sweep")
    output = (data.get("env") or {}).get("OUTPUT") or os.environ.get("OUTPUT") or "./output"
    return SweepState(os.path.join(os.path.abspath(output), ".sweeps", str(name)))


def slurm_settings(args: argparse.Namespace, from_grid: Dict[str, Any]) -> Dict[str, Any]:
    """The grid's ``slurm:`` section, then a --slurm-config YAML, then flags (later wins)."""
    settings = dict(from_grid)
    if getattr(args, "slurm_config", None):
        try:
            with open(args.slurm_config, encoding="utf-8") as f:
                settings.update(yaml.safe_load(f) or {})
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"cannot read --slurm-config {args.slurm_config}: {exc}") from exc
    for key in SLURM_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    return settings


def env_count(name: str) -> int:
    """A positive count from the environment (JOBS, THREADS), 0 when unset."""
    text = os.environ.get(name, "").strip()
    if text and (not text.isdigit() or int(text) < 1):
        raise UserError(f"{name} must be a positive integer, not '{text}'")
    return int(text or 0)


def check_counts(args: argparse.Namespace) -> None:
    """--jobs and --threads, when given, are positive (as JOBS and THREADS are)."""
    for flag in ("jobs", "threads"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise UserError(f"--{flag} must be a positive integer, not {value}")


def plan_and_launch(grid_file: Optional[str], flags: Dict[str, Any], args: argparse.Namespace) -> int:
    check_counts(args)
    grid = build_grid(grid_file, flags)
    methods = resolve_methods(grid.methods)
    env = script_env(grid)
    points = expand(grid, list(methods), env.get("EXTRA_OPTS", ""))
    runs = {p.id: point_runs(p, methods[p.method], env) for p in points}
    check_run_configs(points, runs)  # a bad option value stops the sweep here, before any point starts
    groups = chains(points, runs)
    state = state_folder(args, env, grid.name)
    slurm = slurm_settings(args, grid.slurm)
    jobs = args.jobs or env_count("JOBS") or (len(groups) if args.launcher == "slurm" else 1)
    jobs, capped = cap_jobs(jobs, len(groups), args.launcher)
    threads = args.threads or env_count("THREADS") or (
        int(slurm.get("cpus") or 1) if args.launcher == "slurm" else default_threads(jobs))
    print(f"sweep {grid.name}: {len(points)} point(s) in {len(groups)} chain(s), launcher {args.launcher}, "
          f"{jobs} at once{capped}, {threads} thread(s) each; state {state.folder}", flush=True)
    if args.dry_run:
        for ids in groups:
            print("  chain: " + " -> ".join(ids))
        return 0
    lock = hold_sweep(state)  # one run of this sweep at a time, from its plan to its last status line
    try:
        state.save_plan(grid.name, env, points, runs, groups,
                        {k: [m.trainer, m.default_config] for k, m in methods.items()},
                        {"protocols": grid.protocols, "seeds": grid.seeds})
        devices = [d for d in (args.devices or os.environ.get("DEVICES") or "").replace(",", " ").split() if d]
        how = Launch(args.launcher, jobs, threads, slurm, args.wait, devices)
        failed = launch(state, groups, how)
        if args.launcher == "slurm" and not args.wait:
            return 0
        statuses = sweep_status(state)
        print(format_status(statuses, str(state.folder)), flush=True)
        return final_status(statuses, failed, state)
    finally:
        lock.release()


def final_status(statuses: List[Any], failed: int, state: SweepState) -> int:
    """The exit status says what the status lines say: 1 while a point is not done. A chain that exited non-zero
    although its points' results are all there now (another process finished them) is a note, not a failure."""
    if any(s.state != "done" for s in statuses):
        return 1
    if failed:
        print(f"note: {failed} chain(s) exited non-zero, but every point's results are complete and current "
              f"(finished by another process?); their logs are in {state.folder / 'logs'}", flush=True)
    return 0


def add_launch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--launcher", choices=LAUNCHERS, default=os.environ.get("LAUNCHER") or "local")
    parser.add_argument("--jobs", type=int, help="chains at once: local workers, or Slurm array tasks running "
                        "together (default: $JOBS, else 1 locally and every chain on Slurm)")
    parser.add_argument("--threads", type=int, help="threads per worker (OMP_NUM_THREADS) and CPUs per Slurm task "
                        "(default: $THREADS; locally the CPUs divided by --jobs, on Slurm --cpus or 1)")
    parser.add_argument("--wait", action="store_true", help="slurm: wait for the jobs, then print the status")
    parser.add_argument("--devices", help="local: GPU ids dealt to the workers, one each, e.g. 0,1,2,3 "
                        "(CUDA_VISIBLE_DEVICES of every run of that worker)")
    parser.add_argument("--dry-run", action="store_true", help="print the points and chains, run nothing")
    parser.add_argument("--slurm-config", help="YAML of Slurm settings (keys: " + ", ".join(sorted(SLURM_KEYS)) + ")")
    parser.add_argument("--partition")
    parser.add_argument("--account")
    parser.add_argument("--qos")
    parser.add_argument("--time", type=int, help="minutes per job")
    parser.add_argument("--gpus", type=int, help="GPUs per job")
    parser.add_argument("--cpus", type=int, help="CPUs per job (default: --threads)")
    parser.add_argument("--mem-gb", dest="mem_gb", type=int, help="memory per job in GB")
    parser.add_argument("--constraint")


def collect(state: SweepState, passthrough: List[str]) -> int:
    """Print tools/compare.py's tables for each protocol of the sweep, restricted to its methods and seeds."""
    plan = state.load_plan()
    trainers = [trainer for trainer, _ in plan["methods"].values()]
    python = plan["env"].get("PYTHON") or sys.executable
    compare = str(HOME / "tools" / "compare.py")
    axes, output = plan["axes"], plan["env"].get("OUTPUT")
    if not output or not isinstance(axes.get("protocols"), list) or not isinstance(axes.get("seeds"), list):
        raise UserError(f"{state.folder} records no output folder, protocols or seeds to collect; run the grid "
                        "again with `sweep.py run`")
    worst = 0
    for protocol in axes["protocols"]:
        cmd = [python, compare, output, "--protocol", protocol, "--trainers", *trainers,
               "--seeds", *map(str, axes["seeds"]), *passthrough]
        print(f"==> {protocol}", flush=True)
        worst = max(worst, subprocess.call(cmd))
    return worst


def script_call(argv: List[str]) -> int:
    """A protocol.sh call (METHOD PROTOCOL ARGS... | compare PROTOCOL OPTIONS...) run as a sweep."""
    env = dict(os.environ)
    args = argparse.Namespace(launcher=env.get("LAUNCHER") or "local", jobs=None, threads=None, devices=None,
                              wait=True, dry_run=env.get("DRY_RUN", "") not in ("", "0"), state=None,
                              slurm_config=env.get("SLURM_CONFIG") or None)
    passthrough: List[str] = []
    if argv[:1] == ["compare"]:
        if "--" in argv:
            argv, passthrough = argv[: argv.index("--")], argv[argv.index("--") + 1:]
        parser = argparse.ArgumentParser(prog="compare_<protocol>.sh")
        parser.add_argument("protocol", choices=PROTOCOLS)
        for axis in ("methods", "datasets", "seeds", "shots"):
            parser.add_argument(f"--{axis}", nargs="+")
        opts = parser.parse_args(argv[1:])
        datasets = words(opts.datasets, "DATASETS", env,
                         () if opts.protocol in TARGET_PROTOCOLS else default_datasets(env))
        flags = {"name": f"compare-{opts.protocol}", "protocols": [opts.protocol],
                 "methods": words(opts.methods, "METHODS", env, [f for f, m in method_table().items()
                                                                  if opts.protocol in method_protocols(m)]),
                 "datasets": datasets, "seeds": words(opts.seeds, "SEEDS", env, DEFAULT_SEEDS),
                 "shots": words(opts.shots, "SHOTS", env)}
        code = plan_and_launch(None, flags, args)
        return collect(state_folder(args, script_env(build_grid(None, flags)), flags["name"]), passthrough) or code
    if len(argv) < 3 or argv[1] not in PROTOCOLS:
        usage = SPECS[argv[1]].usage if len(argv) > 1 and argv[1] in SPECS else "METHOD PROTOCOL ARGS..."
        raise UserError(f"usage: {usage}")
    protocol, rest = argv[1], argv[2:]
    trainer = resolve_method(argv[0], method_table()).trainer
    flags: Dict[str, Any] = {"name": f"{trainer.lower()}-{protocol}", "protocols": [protocol], "methods": [trainer]}
    if protocol == BASE2NEW.name:
        if len(rest) not in (2, 3):
            raise UserError(f"usage: {BASE2NEW.usage}")
        flags.update(datasets=[rest[0]], seeds=[rest[1]], shots=words(None, "SHOTS", env))
        if len(rest) == 3:
            os.environ["CFG"] = rest[2]
    elif protocol == FEWSHOT.name:
        flags.update(datasets=[rest[0]], seeds=words(None, "SEEDS", env, DEFAULT_SEEDS),
                     shots=words(rest[1:], "SHOTS", env))
    else:
        flags.update(seeds=[rest[0]], datasets=rest[1:], shots=words(None, "SHOTS", env))
    return plan_and_launch(None, flags, args)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["script"]:
        return script_call(argv[1:])
    passthrough: List[str] = []
    if "--" in argv:
        argv, passthrough = argv[: argv.index("--")], argv[argv.index("--") + 1:]
    parser = argparse.ArgumentParser(prog="sweep.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run or submit the grid (finished runs are skipped by train.py)")
    add_grid_options(run)
    add_launch_options(run)
    status = sub.add_parser("status", help="done / running / failed / pending per point, with failed points' logs")
    add_grid_options(status)
    coll = sub.add_parser("collect", help="print the compare tables of the sweep's runs (options after -- go to "
                          "tools/compare.py)")
    add_grid_options(coll)
    args = parser.parse_args(argv)
    if args.command == "run":
        flags = {axis: getattr(args, axis) for axis in ("protocols", "methods", "datasets", "seeds", "shots")}
        flags["name"] = args.name
        return plan_and_launch(args.grid, flags, args)
    state = locate_state(args)
    if args.command == "status":
        statuses = sweep_status(state)
        print(format_status(statuses, str(state.folder)))
        return 1 if any(s.state == "failed" for s in statuses) else 0
    return collect(state, passthrough)


def entry() -> int:
    return run_main(main)
