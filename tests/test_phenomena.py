"""The phenomena study's plan and verdict rules (promptengine/lab/phenomena.py), on hand-made intervals and results."""

from __future__ import annotations

import json

import pytest

from promptengine.evaluation.perimage import pack_bits
from promptengine.lab import phenomena as P
from promptengine.reporting.intervals import Interval


def iv(estimate, low, high):
    return Interval(estimate, low, high, "bootstrap", 3, "")


def test_plan_covers_every_seed_method_and_protocol():
    jobs = P.plan_runs([1, 2, 3])
    assert len(jobs) == 3 * (len(P.B2N_DATASETS) * len(P.B2N_METHODS) + len(P.XD_METHODS))
    assert ("capt", "xd", ["2", *P.TARGETS]) in jobs
    assert ("coop", "base2new", ["synth_counts", "3"]) in jobs


def test_a_row_holds_only_when_the_estimate_meets_the_target_and_the_interval_excludes_zero():
    assert P.at_least(iv(12.0, 3.0, 20.0), 10)
    assert not P.at_least(iv(9.0, 3.0, 15.0), 10)  # estimate short of the target
    assert not P.at_least(iv(12.0, -1.0, 25.0), 10)  # interval includes zero
    assert P.at_most(iv(-6.0, -9.0, -2.0), -5)
    assert not P.at_most(iv(-6.0, -12.0, 0.5), -5)
    assert not P.at_least(Interval(12.0, None, None, "none", 1, ""), 10)  # no interval, no verdict


def _result(path, dataset, trainer, seed, correct, shots=16):
    """A results.json with per-image records: ``correct`` is the clean (and robust) correctness per image."""
    path.mkdir(parents=True)
    n = len(correct)
    acc = 100.0 * sum(correct) / n
    bits = pack_bits(correct)
    data = {"format": 1, "dataset": dataset, "trainer": trainer, "num_shots": shots, "seed": seed, "split": "test",
            "subsample": "all", "num_images": n, "clean": {"accuracy": acc, "correct": sum(correct), "total": n},
            "worst_case": {"accuracy": acc, "correct": sum(correct), "total": n},
            "robust": [{"name": "pgd10", "attack": {"eps": 2 / 255}, "accuracy": acc, "correct": sum(correct),
                        "total": n}],
            "per_image": {"items": "40:abc", "n": n, "clean": bits, "robust": {"pgd10": bits}, "worst_case": bits}}
    (path / "results.json").write_text(json.dumps(data))


def test_p1_reads_zero_shot_on_the_targets_and_judges_the_spread(tmp_path):
    # zero-shot accuracy per target: 30 %, 60 %, 70 %, 95 % -> average 63.75, one < 50, one > 85: holds
    for target, k in zip(P.TARGETS, (12, 24, 28, 38)):
        for seed in (1, 2, 3):
            folder = tmp_path / "xd" / "test" / target / "shots_16" / "ZeroshotCLIP" / P.study_config("full") / f"seed{seed}"
            _result(folder, P.DATASET_NAME[target], "ZeroshotCLIP", seed, [True] * k + [False] * (40 - k))
    rows, notes = P.analyse(tmp_path, draws=300)
    p1 = {r.key: r for r in rows}["P1"]
    assert p1.holds, (p1.measured, notes)
    assert "average 63.8" in p1.measured
    # the other rows lack their runs and say so instead of judging
    assert any(n.startswith("P2") for n in notes)


def test_every_row_is_judged_when_every_planned_run_is_there(tmp_path):
    """The study names methods by script folder and reads each run under the trainer the registry says that folder
    runs: with every planned run present, all six rows are judged (a folder or trainer name that does not resolve
    would leave its row 'not judged')."""
    trainer = P.trainer_names()
    for i, (folder, protocol) in enumerate(sorted({(f, p) for f, p, _ in P.plan_runs([1])})):
        cells = ([("test_base", d) for d in P.B2N_DATASETS] + [("test_new", d) for d in P.B2N_DATASETS]
                 if protocol == "base2new" else [("test", t) for t in P.TARGETS])
        for phase, dataset in cells:
            for seed in (1, 2):
                k = 8 + 4 * i + seed
                shots = "shots_all" if folder in P.TOWER else "shots_16"  # towers tune on the whole source
                folder_path = (tmp_path / protocol / phase / dataset / shots / trainer[folder]
                               / P.study_config("full", folder) / f"seed{seed}")
                _result(folder_path, P.DATASET_NAME[dataset], trainer[folder], seed, [True] * k + [False] * (40 - k),
                        -1 if shots == "shots_all" else 16)
    rows, notes = P.analyse(tmp_path, draws=50)
    assert [r.key for r in rows] == ["P1", "P2", "P3", "P4", "P5", "P6"], notes
    assert "APT " in {r.key: r for r in rows}["P5"].measured  # methods shown by their trainer names


def _planned_environments(tmp_path, monkeypatch, *options):
    """The environment the study gives each planned run (method folder, script), recorded instead of running."""
    from promptengine.lab import cli

    seen = {}

    def fake_run(cmd, env, log, cwd):
        seen[(cmd[1].split("/")[-2], cmd[1].split("/")[-1])] = env
        return 0.0

    monkeypatch.setattr(cli, "run_logged", fake_run)
    monkeypatch.setattr(cli, "analyse", lambda out, **kw: ([], []))
    cli.main(["--output", str(tmp_path), "--seeds", "1", "--jobs", "1", *options])
    return seen


def test_the_study_tunes_towers_on_the_whole_source_and_prompts_on_few_shots(tmp_path, monkeypatch):
    """The field tunes a tower (TeCoA) on every source image and prompts on 16 shots; the study's runs say so in
    SHOTS, the variable the protocol scripts read."""
    seen = _planned_environments(tmp_path, monkeypatch)
    assert seen[("tecoa", "xd.sh")]["SHOTS"] == "all"
    assert seen[("capt", "xd.sh")]["SHOTS"] == seen[("coop", "base2new.sh")]["SHOTS"] == "16"
    assert P.training_shots("tecoa", "ci") == P.STUDY_SIZES["ci"]["tower_shots"]


def test_a_run_on_other_shots_or_options_than_the_studys_is_not_read(tmp_path):
    """An earlier study's TeCoA tuned on 16 shots, and a zero-shot run with other options (another tower swapped in),
    next to this study's runs: P6 reads the study's only."""
    trainer = P.trainer_names()
    study = P.study_config("full")
    for method, shots, k, config in (("zsclip", "shots_16", 10, study), ("zsclip", "shots_16", 40, "synth@0ther"),
                                     ("tecoa", "shots_all", 30, study), ("tecoa", "shots_16", 10, study),
                                     *((m, "shots_16", 10, study) for m in P.ADVERSARIAL)):
        for target in P.TARGETS:
            for seed in (1, 2):
                folder = tmp_path / "xd" / "test" / target / shots / trainer[method] / config / f"seed{seed}"
                _result(folder, P.DATASET_NAME[target], trainer[method], seed, [True] * k + [False] * (40 - k),
                        -1 if shots == "shots_all" else 16)
    rows, notes = P.analyse(tmp_path, draws=200)
    p6 = {r.key: r for r in rows}["P6"]
    assert "TeCoA +50.0" in p6.measured and p6.holds, p6.measured  # (30 - 10) / 40 points, the 16-shot runs unread


def _new_classes(root, correct_of, coop_config=None):
    trainer = P.trainer_names()
    for method, k in correct_of.items():
        config = coop_config if method == "coop" and coop_config else P.study_config("full", method)
        for dataset in P.B2N_DATASETS:
            for seed in (1, 2):
                folder = (root / "base2new" / "test_new" / dataset / "shots_16" / trainer[method]
                          / config / f"seed{seed}")
                _result(folder, P.DATASET_NAME[dataset], trainer[method], seed, [True] * k + [False] * (40 - k))


def test_p3_holds_when_coop_drops_and_either_cocoop_or_maple_recovers(tmp_path):
    """The issue's P3: CoOp new <= zero-shot - 5, and CoCoOp *or* MaPLe new above CoOp's."""
    _new_classes(tmp_path / "a", {"zsclip": 30, "coop": 20, "maple": 15, "cocoop": 28})
    p3 = {r.key: r for r in P.analyse(tmp_path / "a", draws=200)[0]}["P3"]
    assert p3.holds and "CoCoOp-CoOp +20.0" in p3.measured, p3.measured
    _new_classes(tmp_path / "b", {"zsclip": 30, "coop": 20, "maple": 15, "cocoop": 16})
    assert not {r.key: r for r in P.analyse(tmp_path / "b", draws=200)[0]}["P3"].holds


def test_the_studys_coop_trains_the_fields_budget_twenty_times_its_recipes_epochs(tmp_path, monkeypatch):
    """The CoCoOp paper's CoOp baseline trains 200 epochs against CoCoOp's 10: the study's CoOp runs carry 20 x the
    recipe's OPTIM.MAX_EPOCH in EXTRA_OPTS (and so in their config folder); every other method trains its recipe."""
    seen = {k: env["EXTRA_OPTS"] for k, env in _planned_environments(tmp_path, monkeypatch).items()}
    epochs = P.recipe_epochs("coop")
    assert seen[("coop", "base2new.sh")].endswith(f"OPTIM.MAX_EPOCH {20 * epochs}")
    assert "MAX_EPOCH" not in seen[("cocoop", "base2new.sh")] + seen[("maple", "base2new.sh")]
    assert P.study_config("full", "coop") != P.study_config("full", "cocoop")
    # the ci size's one epoch becomes twenty for CoOp, without a second MAX_EPOCH in the options
    assert P.study_extra("coop", "ci").count("MAX_EPOCH") == 1 and P.study_extra("coop", "ci").endswith(" 20")


def test_p3_reads_the_coop_of_the_fields_budget_not_a_coop_at_the_recipes(tmp_path):
    """A CoOp run at the recipe's budget beside the study's: P3 is judged on the study's CoOp only."""
    _new_classes(tmp_path, {"zsclip": 30, "coop": 20, "maple": 15, "cocoop": 28})
    _new_classes(tmp_path, {"coop": 35}, coop_config=P.study_config("full", "cocoop"))  # recipe-budget CoOp
    p3 = {r.key: r for r in P.analyse(tmp_path, draws=200)[0]}["P3"]
    assert p3.holds and "CoOp-ZS -25.0" in p3.measured, p3.measured
    # --coop-epoch-factor 1 reads the recipe-budget CoOp instead (+12.5 over zero-shot: P3 fails)
    p3 = {r.key: r for r in P.analyse(tmp_path, draws=200, coop_factor=1)[0]}["P3"]
    assert not p3.holds and "CoOp-ZS +12.5" in p3.measured, p3.measured


def test_coop_epoch_factor_one_trains_the_recipe_and_a_factor_below_one_is_refused(tmp_path, monkeypatch, capsys):
    from promptengine.lab import cli

    seen = _planned_environments(tmp_path, monkeypatch, "--coop-epoch-factor", "1")
    assert not any("MAX_EPOCH" in env["EXTRA_OPTS"] for env in seen.values())
    with pytest.raises(SystemExit) as exc:
        cli.main(["--output", str(tmp_path), "--coop-epoch-factor", "0"])
    assert exc.value.code == 2 and "--coop-epoch-factor must be at least 1 (got 0)" in capsys.readouterr().err
