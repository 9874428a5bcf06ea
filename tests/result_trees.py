"""Builders of fake output trees (results.json + Dassl-style logs) for the reporting tests.

The specs below are plain data: ``(trainer, dataset, phase, seed) -> (clean, worst_case)``. The tests compute every
expected table entry from these numbers on their own and compare them with what the tools print.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

TOTAL = 2400


def attack(method: str, steps: int, eps255: float, norm: str = "linf", loss: str = "ce") -> Tuple[str, dict]:
    """(display name, attack record) as the engine writes them."""
    eps = round(eps255 / 255, 5)
    name = f"{method}{steps}, {norm}, eps={eps255:g}/255"
    return name, {
        "method": method,
        "norm": norm,
        "eps": eps,
        "alpha": eps if method == "pgd" else eps / 4,
        "steps": steps,
        "restarts": 1,
        "random_start": True,
        "loss": loss,
    }


PGD100 = attack("pgd", 100, 1)
CW30 = attack("cw", 30, 1)
# Attack sets per trainer: each attack's accuracy is the run's per-sample worst case plus an offset (the worst case
# over several attacks is lower than each of them).
ATTACK_SETS: Dict[str, List[Tuple[Tuple[str, dict], float]]] = {
    "CoOp": [(PGD100, 0.0)],
    "CAPT": [(PGD100, 0.5), (CW30, 1.0)],
    "VPT": [],
}

# ------------------------------------------------------------------------------------------------------------------
# base2new: CoOp and CAPT on two datasets, VPT on one, seeds 1-3.
#  - CoOp/SynthShapes seed 1 has a test_base run that must win over its train_base run;
#  - CAPT/OxfordPets has no test_new run for seed 3 (n=2 there);
#  - VPT has no attacks (robust missing) and no OxfordPets runs (its averages are missing);
#  - CAPT/SynthShapes/train_base/seed2 was rerun: log.txt holds old numbers, log.txt-<stamp> the current ones;
#  - CoOp/OxfordPets/train_base/seed3 has a crashed rerun: its timestamped log is incomplete.
BASE2NEW: Dict[Tuple[str, str, str, int], Tuple[float, Optional[float]]] = {
    ("CoOp", "SynthShapes", "train_base", 1): (80.10, 20.50),
    ("CoOp", "SynthShapes", "train_base", 2): (81.30, 21.00),
    ("CoOp", "SynthShapes", "train_base", 3): (79.70, 19.90),
    ("CoOp", "SynthShapes", "test_base", 1): (80.55, 20.75),
    ("CoOp", "SynthShapes", "test_new", 1): (60.20, 10.10),
    ("CoOp", "SynthShapes", "test_new", 2): (61.80, 11.30),
    ("CoOp", "SynthShapes", "test_new", 3): (59.00, 9.80),
    ("CoOp", "OxfordPets", "train_base", 1): (90.10, 30.20),
    ("CoOp", "OxfordPets", "train_base", 2): (89.40, 29.90),
    ("CoOp", "OxfordPets", "train_base", 3): (90.70, 31.00),
    ("CoOp", "OxfordPets", "test_new", 1): (85.50, 25.10),
    ("CoOp", "OxfordPets", "test_new", 2): (86.20, 24.30),
    ("CoOp", "OxfordPets", "test_new", 3): (84.90, 26.00),
    ("CAPT", "SynthShapes", "train_base", 1): (78.90, 35.20),
    ("CAPT", "SynthShapes", "train_base", 2): (79.60, 36.10),
    ("CAPT", "SynthShapes", "train_base", 3): (78.20, 34.70),
    ("CAPT", "SynthShapes", "test_new", 1): (66.40, 28.80),
    ("CAPT", "SynthShapes", "test_new", 2): (67.90, 29.50),
    ("CAPT", "SynthShapes", "test_new", 3): (65.10, 27.20),
    ("CAPT", "OxfordPets", "train_base", 1): (88.80, 45.60),
    ("CAPT", "OxfordPets", "train_base", 2): (89.20, 46.30),
    ("CAPT", "OxfordPets", "train_base", 3): (88.10, 44.90),
    ("CAPT", "OxfordPets", "test_new", 1): (87.00, 40.20),
    ("CAPT", "OxfordPets", "test_new", 2): (86.40, 41.00),
    ("VPT", "SynthShapes", "train_base", 1): (75.00, None),
    ("VPT", "SynthShapes", "train_base", 2): (76.20, None),
    ("VPT", "SynthShapes", "train_base", 3): (74.40, None),
    ("VPT", "SynthShapes", "test_new", 1): (58.80, None),
    ("VPT", "SynthShapes", "test_new", 2): (57.60, None),
    ("VPT", "SynthShapes", "test_new", 3): (59.90, None),
}
RERUN_DIR = ("CAPT", "SynthShapes", "train_base", 2)
RERUN_OLD = (70.00, 30.00)  # clean, worst in the superseded log.txt
CRASHED_DIR = ("CoOp", "OxfordPets", "train_base", 3)

# fewshot: shots 1, 4, 16 for CoOp and CAPT on two datasets, seeds 1-2; CAPT/OxfordPets has no 16-shot runs.
FEWSHOT: Dict[Tuple[str, str, int, int], Tuple[float, Optional[float]]] = {}
for _t, _off, _rob in (("CoOp", 0.0, 10.0), ("CAPT", -1.5, 30.0)):
    for _d, _base in (("SynthShapes", 40.0), ("OxfordPets", 70.0)):
        for _k, _gain in ((1, 0.0), (4, 8.25), (16, 15.5)):
            if (_t, _d, _k) == ("CAPT", "OxfordPets", 16):
                continue
            for _s in (1, 2):
                FEWSHOT[(_t, _d, _k, _s)] = (round(_base + _off + _gain + 0.7 * _s, 2), round(_rob + _gain / 2 + 0.45 * _s, 2))

# xd: trained on SynthShapes, tested on SynthSketch and OxfordPets; CAPT's test runs carry a pgd eps sweep.
XD_SOURCE = "SynthShapes"
XD: Dict[Tuple[str, str, str, int], Tuple[float, Optional[float]]] = {
    ("CoOp", "SynthShapes", "train", 1): (82.00, 15.00),
    ("CoOp", "SynthShapes", "train", 2): (83.00, 16.00),
    ("CoOp", "SynthSketch", "test", 1): (41.00, 5.00),
    ("CoOp", "SynthSketch", "test", 2): (43.50, 6.50),
    ("CoOp", "OxfordPets", "test", 1): (61.25, 9.75),
    ("CoOp", "OxfordPets", "test", 2): (60.75, 8.25),
    ("CAPT", "SynthShapes", "train", 1): (80.00, 40.00),
    ("CAPT", "SynthShapes", "train", 2): (81.00, 41.00),
    ("CAPT", "SynthSketch", "test", 1): (45.00, 20.00),
    ("CAPT", "SynthSketch", "test", 2): (44.00, 22.00),
    ("CAPT", "OxfordPets", "test", 1): (62.00, 30.00),
    ("CAPT", "OxfordPets", "test", 2): (63.00, 31.00),
}
EPS_SWEEP = [attack("pgd", 10, e) for e in (1, 2, 4)]  # robust = worst + (2, 1, 0) for CAPT xd test runs


def log_text(
    clean: float,
    robust: Sequence[Tuple[str, float]],
    *,
    train: bool = True,
    complete: bool = True,
    signal: str = "Finish training",
) -> str:
    """A Dassl-style log: preamble, training lines, a mid-training val block, the end signal, the test block."""
    lines = [
        "** Arguments **",
        "seed: 1",
        "** Config **",
        "OUTPUT_DIR: output",
        "Loading trainer: X",
        "Loading dataset: Y",
        "Loading evaluator: Classification",
    ]
    if train:
        lines += [
            "epoch [1/2] batch [1/5] time 0.100 (0.100) data 0.001 (0.001) loss 1.2345 (1.2345) "
            "acc 50.0000 (50.0000) lr 2.0000e-03 eta 0:00:01",
            "Evaluate on the *val* set",
            "=> result",
            "* total: 100",
            "* correct: 33",
            "* accuracy: 33.00%",
            "* error: 67.00%",
            "* macro_f1: 30.00%",
            "* robust_accuracy (pgd100, linf, eps=1/255): 3.00%",
        ]
        if not complete:
            return "\n".join(lines) + "\n"
        lines += [signal, "Deploy the last-epoch model"]
    elif not complete:
        return "\n".join(lines) + "\n"
    correct = round(clean * TOTAL / 100)
    lines += [
        "Evaluate on the *test* set",
        "=> result",
        f"* total: {TOTAL:,}",
        f"* correct: {correct:,}",
        f"* accuracy: {clean:.2f}%",
        f"* error: {100 - clean:.2f}%",
        f"* macro_f1: {clean - 1:.2f}%",
    ]
    lines += [f"* robust_accuracy ({name}): {acc:.2f}%" for name, acc in robust]
    lines.append("Elapsed: 0:00:02")
    return "\n".join(lines) + "\n"


def run_dir(
    root: Path, protocol: str, phase: str, dataset: str, trainer: str, seed: int, shots: int = 16, config: str = "synth"
) -> Path:
    shots_dir = "shots_all" if shots < 1 else f"shots_{shots}"
    return Path(root) / protocol / phase / dataset / shots_dir / trainer / config / f"seed{seed}"


def write_run(
    root: Path,
    protocol: str,
    phase: str,
    dataset: str,
    trainer: str,
    seed: int,
    clean: float,
    attacks: Sequence[Tuple[Tuple[str, dict], float]] = (),
    worst: Optional[float] = None,
    *,
    shots: int = 16,
    config: str = "synth",
    log: bool = True,
) -> Path:
    """Write results.json (and a matching log.txt) for one run; ``attacks`` is ((name, record), accuracy).

    ``worst`` is the per-sample worst case over the attacks (at most the lowest attack accuracy; default that)."""
    path = run_dir(root, protocol, phase, dataset, trainer, seed, shots, config)
    path.mkdir(parents=True, exist_ok=True)
    eval_only = phase.startswith("test")
    subsample = {"train_base": "base", "test_base": "base", "test_new": "new"}.get(phase, "all")
    robust = [
        {"name": name, "attack": rec, "accuracy": acc, "correct": round(acc * TOTAL / 100), "total": TOTAL}
        for (name, rec), acc in attacks
    ]
    record = {
        "format": 1,
        "trainer": trainer,
        "dataset": dataset,
        "subsample": subsample,
        "num_shots": shots,
        "seed": seed,
        "backbone": "SynthCLIP",
        "config": config,
        "split": "test",
        "num_images": TOTAL,
        "eval_only": eval_only,
        "precision": "fp32",
        "load_epoch": 10,
        "clean": {"accuracy": clean, "correct": round(clean * TOTAL / 100), "total": TOTAL, "macro_f1": clean - 1},
        "robust": robust,
        "time": "2026-11-24T22:50:00",
    }
    if robust:
        worst = min(acc for _, acc in attacks) if worst is None else worst
        record["worst_case"] = {"accuracy": worst, "correct": round(worst * TOTAL / 100), "total": TOTAL}
    (path / "results.json").write_text(json.dumps(record, indent=1))
    if log:
        (path / "log.txt").write_text(log_text(clean, [(n, a) for (n, _), a in attacks], train=not eval_only))
    return path


def trainer_attacks(trainer: str, worst: Optional[float]):
    if worst is None:
        return []
    return [(atk, round(worst + offset, 2)) for atk, offset in ATTACK_SETS[trainer]]


def build_base2new(root: Path) -> None:
    for (trainer, dataset, phase, seed), (clean, worst) in BASE2NEW.items():
        path = write_run(root, "base2new", phase, dataset, trainer, seed, clean, trainer_attacks(trainer, worst), worst)
        key = (trainer, dataset, phase, seed)
        if key == RERUN_DIR:
            # The first run's log.txt holds other numbers; the rerun's timestamped log is the one that counts.
            current = (path / "log.txt").read_text()
            old_clean, old_worst = RERUN_OLD
            (path / "log.txt").write_text(log_text(old_clean, [(n, a) for (n, _), a in trainer_attacks(trainer, old_worst)]))
            (path / "log.txt-2026-11-24-10-00-00").write_text(current)
        if key == CRASHED_DIR:
            (path / "log.txt-2026-11-25-09-30-00").write_text(log_text(11.11, [], complete=False))


def build_fewshot(root: Path) -> None:
    for (trainer, dataset, shots, seed), (clean, worst) in FEWSHOT.items():
        write_run(
            root,
            "fewshot",
            "train",
            dataset,
            trainer,
            seed,
            clean,
            trainer_attacks(trainer, worst),
            worst,
            shots=shots,
            log=False,
        )


def build_xd(root: Path) -> None:
    for (trainer, dataset, phase, seed), (clean, worst) in XD.items():
        if trainer == "CAPT" and phase == "test":
            attacks = [(atk, round(worst + off, 2)) for atk, off in zip(EPS_SWEEP, (2.0, 1.0, 0.0))]
        else:
            attacks = trainer_attacks(trainer, worst)
        write_run(root, "xd", phase, dataset, trainer, seed, clean, attacks, worst, log=False)


def build_tree(root: Path) -> Path:
    build_base2new(root)
    build_fewshot(root)
    build_xd(root)
    return Path(root)


def write_bits_run(
    root: Path,
    protocol: str,
    phase: str,
    dataset: str,
    trainer: str,
    seed: int,
    clean: Sequence[bool],
    worst: Optional[Sequence[bool]] = None,
    *,
    items: Optional[str] = None,
    shots: int = 16,
    config: str = "synth",
) -> Path:
    """A results.json with a per-image record: accuracies and counts follow from the flags (image i = flag i), one
    PGD attack whose per-image vector is ``worst``. ``items`` names the evaluated items (default: per dataset and
    phase, so base and new images never pair)."""
    from promptengine.evaluation.perimage import build_record

    n = len(clean)
    acc = 100.0 * sum(clean) / n
    attacks = [] if worst is None else [(PGD100, 100.0 * sum(worst) / n)]
    path = write_run(root, protocol, phase, dataset, trainer, seed, acc, attacks, shots=shots, config=config, log=False)
    record = json.loads((path / "results.json").read_text())
    record["num_images"] = n
    record["clean"].update(correct=sum(clean), total=n)
    for block in record["robust"] + ([record["worst_case"]] if "worst_case" in record else []):
        block.update(correct=sum(worst), total=n)
    record["per_image"] = build_record(items or f"{n}:{dataset}-{phase}", clean, [worst] if worst else [], worst)
    (path / "results.json").write_text(json.dumps(record, indent=1))
    return path
