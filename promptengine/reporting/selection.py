"""Which runs feed which table entry: per-protocol run selection, before any metric or statistic is chosen.

``select`` arranges the loaded runs of one protocol into blocks (datasets), rows (methods) and columns (Base/New,
shots, Accuracy), keeping apart what must not be averaged (other configs, other run settings) and naming missing
runs; ``aggregate`` turns a selection into grids (conventions in its docstring and docs/EXPERIMENTS.md).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..engine.identity import describe_difference, first_difference
from ..protocols.layout import TARGET_PROTOCOLS, TEST_BASE, TEST_NEW, TRAIN, TRAIN_BASE, ZSROBUST, shots_label
from .results import LOOSE, TABLES, RunResult, budget_label

BASE, NEW = "Base", "New"
ACCURACY = "Accuracy"
MISSING_LIST_LIMIT = 12

CellKey = Tuple[str, str, str]  # (block, row, column)


@dataclass
class Selection:
    """Which runs feed which cell of one protocol's grid, before any metric is chosen."""

    protocol: str
    blocks: List[str]
    average_blocks: List[str]
    rows: List[str]
    columns: List[str]
    runs: Dict[CellKey, Dict[int, RunResult]]
    expected_seeds: Tuple[int, ...]
    hm: bool = False
    notes: List[str] = field(default_factory=list)

    def records(self) -> Iterable[RunResult]:
        for seeds in self.runs.values():
            yield from seeds.values()

    def has_metric(self, metric: str) -> bool:
        return any(r.value(metric) is not None for r in self.records())




def _ordered(names: Iterable[str], preferred: Optional[Sequence[str]]) -> List[str]:
    names = set(names)
    if preferred:
        return [n for n in preferred if n in names]
    return sorted(names)


MethodKey = Tuple[str, str, int, int]  # (trainer, config, shots, setting variant: 0 = the only one)


def _method_labels(keys: Iterable[MethodKey], trainers: Optional[Sequence[str]]) -> Dict[MethodKey, str]:
    """Row labels: the trainer, plus ``/CFG`` when the trainer has several configs, plus the shots when they vary,
    plus ``[setting k]`` when one folder holds results of several run identities."""
    keys = sorted(set(keys))
    configs = defaultdict(set)
    for trainer, config, _, _ in keys:
        configs[trainer].add(config)
    several_shots = len({shots for _, _, shots, _ in keys}) > 1
    labels = {}
    for trainer, config, shots, variant in keys:
        label = trainer if len(configs[trainer]) == 1 else f"{trainer}/{config}"
        if several_shots:
            label += f" ({shots_label(shots)}-shot)" if shots > 0 else " (all shots)"
        if variant:
            label += f" [setting {variant}]"
        labels[(trainer, config, shots, variant)] = label
    order = {t: i for i, t in enumerate(trainers or [])}

    def rank(key: MethodKey):
        trainer, config = key[0], key[1]
        return (order.get(f"{trainer}/{config}", order.get(trainer, len(order))), key)

    return {key: labels[key] for key in sorted(labels, key=rank)}


def _setting_variants(runs: Sequence[RunResult], base_key) -> Tuple[Dict[str, int], List[str]]:
    """Number the run settings (identity minus seed and data) of each method row that holds more than one, so
    results of different identities are never averaged into one cell; a warning names what differs."""
    by_row: Dict[Tuple, Dict[str, Dict]] = defaultdict(dict)
    for run in runs:
        if run.setting is not None:
            by_row[base_key(run)][run.setting] = run.setting_identity
    variants: Dict[str, int] = {}
    warnings = []
    for row, settings in sorted(by_row.items()):
        if len(settings) < 2:
            continue
        ordered = sorted(settings)
        for i, fp in enumerate(ordered, 1):
            variants[fp] = i
        diff = first_difference(settings[ordered[0]], settings[ordered[1]])
        what = describe_difference(diff, "setting 1", "setting 2") if diff else "their identities"
        warnings.append(f"Warning: {row[0]}/{row[1]} holds results of {len(settings)} different run settings, shown "
                        f"as separate rows and never averaged ({what}).")
    return variants, warnings


def _disjoint_configs(protocol: str, runs: Sequence[RunResult]) -> Dict[str, List[str]]:
    """Trainers whose configs never fill the same cell, with those configs: one row each.

    Recipes pick a config per setting (CoOp few-shot: ``*_ep50`` for 1 shot, ``*_ep100`` for 2-4 shots, the
    200-epoch config for 8-16 shots; base2new: an ``*_ep50`` config on ImageNet only). Such configs are one method.
    """
    cover: Dict[str, Dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for run in runs:
        unit = (run.dataset, run.shots) if protocol in ("fewshot", "base2new") else (run.dataset, run.phase, run.shots)
        cover[run.trainer][run.config].add(unit)
    merged = {}
    for trainer, configs in cover.items():
        units = list(configs.values())
        if len(units) > 1 and sum(map(len, units)) == len(set().union(*units)):
            merged[trainer] = sorted(configs)
    return merged


def _matches(run: RunResult, trainers: Optional[Sequence[str]]) -> bool:
    return not trainers or run.trainer in trainers or f"{run.trainer}/{run.config}" in trainers


def _missing_notes(sel: Selection) -> List[str]:
    """Name the absent runs of every direct cell (``method · dataset · column: seeds ...``)."""
    missing = []
    expected = set(sel.expected_seeds)
    for block in sel.blocks:
        for row in sel.rows:
            for column in sel.columns:
                absent = sorted(expected - set(sel.runs.get((block, row, column), {})))
                if absent:
                    missing.append(f"{row} · {block} · {column}: seed {', '.join(map(str, absent))}")
    if not missing:
        return []
    shown = "; ".join(missing[:MISSING_LIST_LIMIT])
    more = f"; and {len(missing) - MISSING_LIST_LIMIT} more" if len(missing) > MISSING_LIST_LIMIT else ""
    return [f"Missing runs ({len(missing)} cells): {shown}{more}."]


def select(
    protocol: str,
    runs: Sequence[RunResult],
    trainers: Optional[Sequence[str]] = None,
    datasets: Optional[Sequence[str]] = None,
    seeds: Optional[Sequence[int]] = None,
) -> Optional[Selection]:
    """The runs of ``protocol`` arranged into cells; None when the protocol has no runs after filtering.

    ``trainers`` filters and orders rows (a trainer name or ``TRAINER/CFG``), ``datasets`` filters and orders the
    evaluated datasets (xd/dg: the targets; sources are always kept), ``seeds`` sets the expected seeds (default:
    every seed seen in the protocol).
    """
    if protocol not in TABLES:
        raise ValueError(f"unknown protocol {protocol!r}")
    chosen = [r for r in runs if r.protocol == protocol and _matches(r, trainers)]
    if seeds is not None:
        chosen = [r for r in chosen if r.seed in seeds]
    if datasets:
        keep_sources = protocol in TARGET_PROTOCOLS
        chosen = [r for r in chosen if r.dataset in datasets or (keep_sources and r.phase == TRAIN)]
    if not chosen:
        return None

    shots_in_key = protocol != "fewshot"
    merged = _disjoint_configs(protocol, chosen)

    def base_key(run: RunResult) -> Tuple[str, str, int]:
        return (run.trainer, "" if run.trainer in merged else run.config, run.shots if shots_in_key else 0)

    variants, variant_warnings = _setting_variants(chosen, base_key)

    def method_key(run: RunResult) -> MethodKey:
        return (*base_key(run), variants.get(run.setting or "", 0))

    labels = _method_labels((method_key(r) for r in chosen), trainers)

    def label(run: RunResult) -> str:
        return labels[method_key(run)]

    cells: Dict[CellKey, Dict[int, RunResult]] = defaultdict(dict)
    notes: List[str] = [
        f"{trainer} combines the configs {', '.join(configs)}, which never share a cell." for trainer, configs in merged.items()
    ] + variant_warnings
    if protocol == "base2new":
        blocks = _ordered((r.dataset for r in chosen), datasets)
        columns, average_blocks = [BASE, NEW], list(blocks)
        from_train = 0
        for run in sorted(chosen, key=lambda r: r.phase != TEST_BASE):  # test_base first: it wins
            column = NEW if run.phase == TEST_NEW else BASE
            slot = cells[(run.dataset, label(run), column)]
            if run.seed not in slot:
                slot[run.seed] = run
                from_train += run.phase == TRAIN_BASE
        if from_train:
            notes.append(
                f"Base comes from {TEST_BASE} where present, else from the final test of {TRAIN_BASE} "
                f"({from_train} run(s) from {TRAIN_BASE})."
            )
    elif protocol == "fewshot":
        blocks = _ordered((r.dataset for r in chosen), datasets)
        shot_values = sorted({r.shots for r in chosen}, key=lambda s: (s < 1, s))
        columns = [_shots_column(s) for s in shot_values]
        average_blocks = list(blocks)
        for run in chosen:
            cells[(run.dataset, label(run), _shots_column(run.shots))][run.seed] = run
    elif protocol == LOOSE:
        order = {d: i for i, d in enumerate(datasets or [])}
        blocks = [b for _, b in sorted({(order.get(r.dataset, 0), _loose_block(r)) for r in chosen})]
        columns, average_blocks = [ACCURACY], []  # unrelated single runs: no average
        for run in chosen:
            cells[(_loose_block(run), label(run), ACCURACY)][run.seed] = run
        notes.append("Runs whose results.json lies outside the protocol layout, each placed by what its file records "
                     "(trainer, config, dataset, class subset, shots, seed).")
    elif protocol == ZSROBUST.name:
        blocks = _ordered((r.dataset for r in chosen if r.phase != TRAIN), datasets)
        average_blocks = list(blocks)
        budgets = sorted({b for r in chosen for b in r.budgets}, key=lambda b: (b[0] != "linf", b))
        columns = [budget_label(b) for b in budgets] or [ACCURACY]
        for run in chosen:
            if run.phase == TRAIN:
                continue
            # a run without attacks still shows its clean accuracy, in every column
            views = {budget_label(b): run.at_budget(b) for b in run.budgets} or {c: run for c in columns}
            for column, view in views.items():
                cells[(run.dataset, label(run), column)][run.seed] = view
        if budgets:
            notes.append("One column per attack budget: robust is the per-sample worst case over the run's attacks at "
                         "that budget; clean is the same evaluation's clean accuracy (the same images).")
    else:
        sources = sorted({r.dataset for r in chosen if r.phase == "train"})
        targets = _ordered((r.dataset for r in chosen if r.phase == "test"), datasets)
        blocks = [f"{s} (source)" for s in sources] + targets
        columns, average_blocks = [ACCURACY], targets
        for run in chosen:
            block = f"{run.dataset} (source)" if run.phase == "train" else run.dataset
            cells[(block, label(run), ACCURACY)][run.seed] = run
        if not targets:
            notes.append(f"No {protocol}/test runs yet: only the source accuracy is shown.")
    expected = tuple(sorted(seeds)) if seeds is not None else tuple(sorted({r.seed for r in chosen}))
    sel = Selection(
        protocol=protocol,
        blocks=blocks,
        average_blocks=average_blocks,
        rows=list(dict.fromkeys(labels.values())),
        columns=columns,
        runs=dict(cells),
        expected_seeds=expected,
        hm=protocol == "base2new",
        notes=notes,
    )
    sel.notes.extend(_missing_notes(sel))
    return sel


def _loose_block(run: RunResult) -> str:
    """A loose run's dataset, with its class subset when it is not all classes."""
    return run.dataset if run.subsample == "all" else f"{run.dataset} ({run.subsample} classes)"


def _shots_column(shots: int) -> str:
    return "all shots" if shots < 1 else f"{shots} shot" + ("s" if shots > 1 else "")
