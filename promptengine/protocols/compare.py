"""``scripts/compare_<protocol>.sh``: every method x dataset x seed of one protocol through the method's protocol call
(finished runs are skipped), then the comparison tables of ``tools/compare.py``."""

from __future__ import annotations

import argparse
import shlex
from typing import List, Mapping

from ..registry import HOME
from .layout import BASE2NEW, FEWSHOT, PROTOCOLS, TARGET_PROTOCOLS
from .methods import check_offers, method_protocols, method_table, resolve_method
from .runner import RunFailed, call, dry_run
from .runs import DEFAULT_SEEDS, default_python, parse_seed, words
from .worlds import dataset_config, default_datasets

PROTOCOL_SCRIPT = HOME / "scripts" / "lib" / "protocol.sh"
COMPARE_TOOL = HOME / "tools" / "compare.py"


def compare_main(argv: List[str], env: Mapping[str, str]) -> int:
    passthrough: List[str] = []
    if "--" in argv:
        argv, passthrough = argv[: argv.index("--")], argv[argv.index("--") + 1:]
    parser = argparse.ArgumentParser(prog="compare_<protocol>.sh",
                                     description="Run methods x datasets x seeds with one protocol, then compare.")
    parser.add_argument("protocol", choices=PROTOCOLS)
    parser.add_argument("--methods", nargs="+", help="script folders or trainer names (default: $METHODS, or all)")
    parser.add_argument("--datasets", nargs="+", help="datasets; xd/dg: the targets (default: $DATASETS)")
    parser.add_argument("--seeds", nargs="+", help="seeds (default: $SEEDS, or 1 2 3)")
    parser.add_argument("--shots", nargs="+", help="fewshot: shot counts; others: training shots (default: $SHOTS)")
    args = parser.parse_args(argv)
    table = method_table()
    offering = [folder for folder, m in table.items() if args.protocol in method_protocols(m)]
    methods = [resolve_method(m, table) for m in words(args.methods, "METHODS", env, offering)]
    for method in methods:
        check_offers(method, args.protocol)
    seeds = [str(parse_seed(s)) for s in words(args.seeds, "SEEDS", env, DEFAULT_SEEDS)]
    datasets = words(args.datasets, "DATASETS", env,
                     () if args.protocol in TARGET_PROTOCOLS else default_datasets(env))
    for dataset in datasets:
        dataset_config(dataset)
    script_env = dict(env, SEEDS=" ".join(seeds))
    if args.shots:
        script_env["SHOTS"] = " ".join(words(args.shots))
    calls = []
    for method in methods:
        if args.protocol == BASE2NEW.name:
            calls += [(method.script_folder, [d, s]) for d in datasets for s in seeds]
        elif args.protocol == FEWSHOT.name:
            calls += [(method.script_folder, [d]) for d in datasets]
        else:
            calls += [(method.script_folder, [s, *datasets]) for s in seeds]
    for folder, call_args in calls:
        print(f"==> {folder} {args.protocol}.sh {' '.join(call_args)}", flush=True)
        code = call(["bash", str(PROTOCOL_SCRIPT), folder, args.protocol, *call_args], script_env)
        if code != 0:
            raise RunFailed(code, f"{folder}/{args.protocol}.sh {' '.join(call_args)} failed (exit status {code})")
    python = env.get("PYTHON") or default_python()
    output = env.get("OUTPUT") or "./output"
    cmd = [python, str(COMPARE_TOOL), output, "--protocol", args.protocol,
           "--trainers", *[m.trainer for m in methods], "--seeds", *seeds, *passthrough]
    print(f"==> {shlex.join(cmd)}", flush=True)
    if dry_run(env):
        return 0
    return call(cmd, env)
