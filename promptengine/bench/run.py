"""The benchmark run: build, time side by side, derive floors and ratios, and format the report.

Kept apart from ``tools/bench.py`` so the smoke test runs exactly what the command line runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Callable, Dict, List, Optional

import torch
from tabulate import tabulate
from torch.profiler import ProfilerActivity, profile

from . import cases as C
from . import defenses as D
from .measure import CaseResult, Measurer, run_cases
from .setup import BenchSetup, build_bench

GROUPS = ("step", "eval", "trunc", "defense")
DEFAULT_GROUPS = ("step", "eval", "trunc")  # "defense" (test-time defenses) on request: slow at the papers' settings
TARGETS = {"step/floor": ("<=", 1.15), "reference/step": (">=", 3.0), "eval/floor": ("<=", 1.10)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Time the CAPT step, its floor, a reference-style step and PGD evaluation.")
    p.add_argument("--arch", default="tiny-p8-32", help="tiny-p8-32, ViT-B/32, ViT-B/16 ... (random weights)")
    p.add_argument("--classes", type=int, default=50)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=3, help="K: PGD steps of the training attack")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--eval-steps", type=int, default=10, help="k: PGD steps of the evaluation attack")
    p.add_argument("--eval-batches", type=int, default=1, help="batches per timed evaluation (text features once)")
    p.add_argument("--prompt-depth", type=int, default=9, help="CAPT PROMPT_DEPTH (capped at the model's layers)")
    p.add_argument("--only", nargs="+", choices=GROUPS, default=list(DEFAULT_GROUPS),
                   help="which groups of cases to time (default: all but defense)")
    p.add_argument("--defenses", nargs="+", default=[], metavar="TRAINER",
                   help="defense group: these test-time defenses (default: every registered one)")
    p.add_argument("--defense-opts", nargs="+", default=[], metavar="KEY VALUE",
                   help="defense group: config overrides of the defenses' default configs, e.g. TRAINER.RTPT.VIEWS 7")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--profile", action="store_true", help="also profile one engine step (top operators)")
    p.add_argument("--json", default="", help="write every number to this file")
    p.add_argument("--verbose", action="store_true", help="print each timed call")
    return p


def _cases(s: BenchSetup, args, prim: C.Primitives) -> Dict[str, Callable[[], object]]:
    train_loss = s.trainer.train_attack.loss
    spec = C.eval_spec(args.eval_steps)
    batches = C.eval_batches(s, args.eval_batches)
    out: Dict[str, Callable[[], object]] = {}
    if "step" in args.only:
        out.update({
            "step": lambda: C.engine_step(s),
            **{name: (lambda f=full, t=tb: C.reference_step(s, full_context=f, text_backward=t))
               for name, (full, tb) in C.REFERENCES.items()},
            "pgd_input_grad": lambda: prim.pgd_input_grad(train_loss),
            "image_train": prim.image_train,
            "text_train": prim.text_train,
            "frozen_forward": prim.frozen_forward,
        })
    if "eval" in args.only:
        out.update({
            "eval": lambda: C.engine_eval(s, spec, batches),
            "pgd_input_grad_ce": lambda: prim.pgd_input_grad(spec.loss),
            "image_forward": prim.image_forward,
            "text_forward": prim.text_forward,
        })
    if "trunc" in args.only:
        out.update({
            "text_forward_cut": lambda: prim.text_forward("cut"),
            "text_forward_full77": lambda: prim.text_forward("full"),
            "text_train_cut": lambda: prim.text_train("cut"),
            "text_train_full77": lambda: prim.text_train("full"),
        })
    if "defense" in args.only:
        out.update(D.defense_cases(s, args.eval_steps, batches, args.defenses, args.defense_opts))
    return out


def _floors(r: Dict[str, CaseResult], k: int, eval_k: int, n_eval: int) -> Dict[str, dict]:
    """Each floor as (component, count) terms with their medians."""
    floors: Dict[str, dict] = {}
    if "step" in r:
        floors["step"] = {"pgd_input_grad": k, "image_train": 2, "text_train": 1, "frozen_forward": 1}
    if "eval" in r:
        floors["eval"] = {"text_forward": 1, "image_forward": 2 * n_eval, "pgd_input_grad_ce": eval_k * n_eval}
    return {name: {"terms": terms, "seconds": sum(r[c].median * n for c, n in terms.items())}
            for name, terms in floors.items()}


def _ratios(r: Dict[str, CaseResult], floors: Dict[str, dict]) -> Dict[str, float]:
    out: Dict[str, float] = {}
    if "step" in floors:
        out["step/floor"] = r["step"].median / floors["step"]["seconds"]
        out["reference/step"] = r["reference"].median / r["step"].median
        for name in C.REFERENCES:
            if name != "reference":
                out[f"{name}/step"] = r[name].median / r["step"].median
    if "eval" in floors:
        out["eval/floor"] = r["eval"].median / floors["eval"]["seconds"]
    if "text_forward_cut" in r:
        out["text fwd full77/cut"] = r["text_forward_full77"].median / r["text_forward_cut"].median
        out["text fwd+bwd full77/cut"] = r["text_train_full77"].median / r["text_train_cut"].median
    return out


def machine_info(threads: int) -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"python": platform.python_version(), "torch": torch.__version__, "threads": threads,
            "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "loadavg_1_5_15": [round(v, 2) for v in load], "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def run_benchmark(args: argparse.Namespace, log: Optional[Callable[[str], None]] = None) -> dict:
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but CUDA is not available")
    info = machine_info(torch.get_num_threads())
    t_build = time.perf_counter()
    s = build_bench(args.arch, args.classes, args.batch, args.steps, args.precision, args.device, args.prompt_depth)
    build_s = time.perf_counter() - t_build
    prim = C.Primitives(s)
    checks = {}
    if "step" in args.only:
        checks["steps"] = C.check_steps(s)
    checks["truncation"] = C.check_truncation(s)
    measurer = Measurer(s.device)
    results = run_cases(_cases(s, args, prim), args.repeats, measurer, warmup=args.warmup,
                        log=log if args.verbose else None)
    floors = _floors(results, args.steps, args.eval_steps, args.eval_batches)
    info["loadavg_after"] = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
    out = {
        "config": {k: v for k, v in vars(args).items() if k not in ("json", "verbose")},
        "precision": s.precision, "device": str(s.device), "machine": info, "build_s": build_s,
        "memory_kind": measurer.memory_kind, "text_tokens": list(C.text_lengths(s.model)),
        "cases": {n: r.to_dict() for n, r in results.items()}, "floors": floors,
        "ratios": _ratios(results, floors), "checks": checks,
    }
    if "defense" in args.only:
        out["defenses"] = D.defense_table(out["cases"], args.batch * args.eval_batches)
    if args.profile and "step" in args.only:
        out["profile"] = profile_step(s)
    return out


def profile_step(s: BenchSetup, rows: int = 15) -> str:
    """Top operators of one engine step by self CPU time (where the time goes)."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if s.device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        C.engine_step(s)
    key = "self_device_time_total" if s.device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


def _verdict(name: str, value: float) -> str:
    if name not in TARGETS:
        return ""
    op, target = TARGETS[name]
    ok = value <= target if op == "<=" else value >= target
    return f"target {op} {target:g}: {'met' if ok else 'MISSED'}"


def format_report(out: dict) -> str:
    cfg, cases = out["config"], out["cases"]
    m = out["machine"]
    lines: List[str] = [
        f"bench: {cfg['arch']} (random weights), {cfg['classes']} classes, batch {cfg['batch']}, K={cfg['steps']} "
        f"(training PGD), eval PGD-{cfg['eval_steps']} x {cfg['eval_batches']} batch(es), {out['precision']}, "
        f"{out['device']}, prompt depth {cfg['prompt_depth']} (capped at the model's layers)",
        f"machine: {m['processor']}, {m['cpus']} CPUs, torch {m['torch']} with {m['threads']} threads, load average "
        f"{m['loadavg_1_5_15']} before / {m['loadavg_after']} after; median of {cfg['repeats']} after "
        f"{cfg['warmup']} warm-up; memory: {out['memory_kind']}",
        f"text context: {out['text_tokens'][0]} of {out['text_tokens'][1]} tokens kept",
        "",
    ]
    rows = [[n, f"{c['median_s']:.4f}", f"{min(c['times_s']):.4f}", f"{max(c['times_s']):.4f}",
             "" if c["peak_mib"] is None else f"{c['peak_mib']:.0f}"] for n, c in cases.items()]
    lines.append(tabulate(rows, headers=["case", "median s", "min s", "max s", "peak MiB"]))
    for name, floor in out["floors"].items():
        lines.append("")
        terms = [[comp, n, f"{cases[comp]['median_s']:.4f}", f"{cases[comp]['median_s'] * n:.4f}",
                  f"{100 * cases[comp]['median_s'] * n / floor['seconds']:.0f}%"] for comp, n in floor["terms"].items()]
        terms.append([f"floor ({name})", "", "", f"{floor['seconds']:.4f}", "100%"])
        lines.append(tabulate(terms, headers=[f"{name} floor term", "count", "median s", "s", "share"]))
    lines.append("")
    ratio_rows = [[k, f"{v:.3f}", _verdict(k, v)] for k, v in out["ratios"].items()]
    lines.append(tabulate(ratio_rows, headers=["ratio", "value", "target"]))
    checks = out["checks"]
    lines.append("")
    check_rows = [[f"{group}.{k}", f"{v:.3g}" if isinstance(v, float) else v] for group, d in checks.items()
                  for k, v in d.items()]
    lines.append(tabulate(check_rows, headers=["exactness check", "value"]))
    if out.get("defenses"):
        columns = [c for c, _ in D.DEFENSE_ATTACKS]
        rows = [[name] + [f"{r[f'{c} s/img']:.4f} ({r[f'{c} x']:.1f}x)" if f"{c} s/img" in r else "-"
                          for c in columns] for name, r in out["defenses"].items()]
        lines += ["", f"test-time defenses: seconds per image (x the undefended clean pass), PGD-{cfg['eval_steps']} "
                  "non-adaptive (pgd) and through the defense (through)",
                  tabulate(rows, headers=["model", *columns])]
    if out.get("profile"):
        lines += ["", "profile of one engine step:", out["profile"]]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    out = run_benchmark(args, log=lambda msg: print(msg, flush=True))
    print(format_report(out))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
        print(f"wrote {args.json}")
    return 0
