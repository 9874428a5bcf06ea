"""``report.md``: the numbers, the plots and one line per gradient-masking check."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence


def _pct(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def _curve_row(points, key: str) -> List[str]:
    return [f"| {key} | " + " | ".join(f"{p[key]:g}" for p in points) + " |",
            "|---|" + "---|" * len(points),
            "| accuracy (%) | " + " | ".join(_pct(p["accuracy"]) for p in points) + " |"]


def _part_md(name: str, r: Dict[str, Any], show_name: bool) -> List[str]:
    h = r["headline_eps"]
    lines = [f"## {name.capitalize()} classes" if show_name else "## Results", "",
             f"{r['n_images']} images ({r['n_classes']} classes, class-balanced), clean accuracy "
             f"**{_pct(r['clean'])}%**. Headline budget: L-inf eps = {h:g}/255.", ""]
    for norm, points in r["eps_curve"].items():
        lines += [f"**Accuracy vs eps ({norm}, PGD-{r['eps_curve_steps']}, /255 units; 0 = clean)**", "",
                  *_curve_row(points, "eps"), ""]
    lines += [f"**Convergence at eps {h:g}/255**: PGD steps (one restart), then restarts of PGD-{r['restart_steps']}",
              "", *_curve_row(r["steps_curve"], "steps"), "", *_curve_row(r["restarts_curve"], "restarts"), ""]
    lines += [f"**Attacks at eps {h:g}/255** (accuracy %, lower = stronger attack)", "", "| attack | accuracy |",
              "|---|---|", f"| clean | {_pct(r['clean'])} |",
              f"| PGD (worst case over the steps and restarts runs) | {_pct(r['pgd'])} |"]
    for attack, acc in r["autoattack"].items():
        lines.append(f"| AutoAttack {attack} ({r['autoattack_iters']} iterations) | {_pct(acc)} |")
    lines.append(f"| AutoAttack, per-sample worst case | {_pct(r['autoattack_worst'])} |")
    if r.get("transfer") is not None:
        lines.append(f"| transfer from frozen zero-shot CLIP (PGD-{r['transfer_steps']}) | {_pct(r['transfer'])} |")
    lines += [f"| **per-sample worst case over all attacks** | **{_pct(r['worst_case'])}** |", ""]
    if r.get("defense") is not None:
        lines += [f"**Test-time defense at eps {h:g}/255**: non-adaptive and adaptive attacks (every other stage of "
                  "this report crafts its examples on the undefended model and lets the defense judge them)", "",
                  "| attack | differentiated through | accuracy |", "|---|---|---|"]
        lines += [f"| {a['attack']} ({a['label']}) | {a['through']} | {_pct(a['accuracy'])} |"
                  for a in r["defense"]["attacks"]]
        lines.append("")
    weakest = [c for c in sorted(r["per_class"], key=lambda c: (c["robust"], c["class"]))][:10]
    lines += ["**Weakest classes** (robust = per-sample worst case over all attacks)", "",
              "| class | images | clean | robust |", "|---|---|---|---|"]
    lines += [f"| {c['class']} | {c['n']} | {_pct(c['clean'])} | {_pct(c['robust'])} |" for c in weakest]
    lines += ["", "**Gradient-masking checks**", ""]
    for f in r["flags"]:
        lines.append(f"- {'**FLAG**' if f['raised'] else 'ok'}: {f['check']}? {f['evidence']}")
    lines += ["", "Stage times (s): " + ", ".join(f"{k} {v:g}" for k, v in r["timings_s"].items()) +
              f"; total {r['seconds']:g} s.", ""]
    return lines


def render_markdown(report: Dict[str, Any], plots: Sequence[str]) -> str:
    parts = report["parts"]
    raised = report["flags_raised"]
    lines = [f"# Robustness report: {report['target']}", "",
             f"Source: `{report['source']}` · {report['time']}", ""]
    lines += [f"_{report['settings_text']}_", ""]
    lines += [("**No gradient-masking flag raised.**" if not raised else
               f"**{raised} gradient-masking flag(s) raised: do not trust the robust accuracy until explained.**"), ""]
    if len(parts) > 1:
        lines += ["| part | clean | PGD | AutoAttack | worst case |", "|---|---|---|---|---|"]
        lines += [f"| {n} | {_pct(r['clean'])} | {_pct(r['pgd'])} | {_pct(r['autoattack_worst'])} | "
                  f"{_pct(r['worst_case'])} |" for n, r in parts.items()]
        lines.append("")
    for name in plots:
        lines += [f"![{name}]({name})", ""]
    for name, r in parts.items():
        lines += _part_md(name, r, show_name=len(parts) > 1)
    return "\n".join(lines)
