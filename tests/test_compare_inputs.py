"""tools/compare.py on trees a user (or a broken disk) makes: impossible accuracies, linked seed folders, a FIFO named
results.json, and the output of a plain ``train.py --output-dir`` run outside the protocol layout."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from promptengine.reporting.cli import compare_main
from promptengine.reporting.results import load_results
from tests import result_trees as rt
from tests.conftest import ROOT, TOY_OPTS, run_train
from tests.test_reporting import read_csv, seed_entry


def compare_csv(*argv) -> list:
    out = io.StringIO()
    assert compare_main([str(a) for a in argv] + ["--format", "csv"], out=out) == 0
    return read_csv(out.getvalue())


def set_values(path: Path, clean, worst) -> None:
    """Overwrite a written record's clean and worst-case accuracy (anything JSON holds, NaN included)."""
    record = json.loads((path / "results.json").read_text())
    record["clean"]["accuracy"] = clean
    record["worst_case"]["accuracy"] = worst
    record["robust"][0]["accuracy"] = worst
    (path / "results.json").write_text(json.dumps(record))


def test_impossible_accuracies_are_excluded_with_one_warning_naming_the_file(tmp_path, capsys):
    values = {1: (50.0, 20.0), 2: (52.0, 22.0), 3: (250, 21.0), 4: (True, 21.0), 5: (-40, 21.0),
              6: (float("nan"), 21.0), 7: ("abc", 21.0), 8: (51.0, 140.0)}
    paths = {}
    for seed, (clean, worst) in values.items():
        paths[seed] = rt.write_run(tmp_path, "fewshot", "train", "D", "CoOp", seed, 10.0, [(rt.PGD100, 10.0)], log=False)
        set_values(paths[seed], clean, worst)
    (clean_table, robust_table) = compare_csv(tmp_path)
    ok_clean, ok_robust = [50.0, 52.0, 51.0], [20.0, 22.0, 21.0, 21.0, 21.0, 21.0, 21.0]

    def entry(vals):  # the mean of the usable seeds, its interval over seeds only, short of the 8 seeds found
        return seed_entry(dict(enumerate(vals)), expected=len(values)).text()

    assert clean_table[2] == [["D", "CoOp", entry(ok_clean)]]
    assert robust_table[2] == [["D", "CoOp", entry(ok_robust)]]
    err = capsys.readouterr().err.splitlines()
    for seed in (3, 4, 5, 6, 7, 8):
        named = [line for line in err if str(paths[seed] / "results.json") in line]
        assert len(named) == 1 and "impossible value(s) excluded" in named[0], named
    assert "140" in next(line for line in err if str(paths[8]) in line)
    assert not any(str(paths[seed]) in line for seed in (1, 2) for line in err)


def test_linked_seed_folders_are_read_and_a_fifo_is_skipped(tmp_path):
    tree = tmp_path / "out"
    rt.write_run(tree, "fewshot", "train", "D", "CoOp", 1, 50.0, log=False)
    elsewhere = rt.write_run(tmp_path / "other_disk", "fewshot", "train", "D", "CoOp", 2, 60.0, log=False)
    seeds = rt.run_dir(tree, "fewshot", "train", "D", "CoOp", 1).parent
    (seeds / "seed2").symlink_to(elsewhere, target_is_directory=True)  # results kept on another disk
    (seeds / "loop").symlink_to(tree, target_is_directory=True)  # a link back up: read once, no endless walk
    (seeds / "seed3").mkdir()
    os.mkfifo(seeds / "seed3" / "results.json")  # opening it for reading would block forever
    code = "import sys; from promptengine.reporting.cli import compare_main; sys.exit(compare_main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, str(tree), "--format", "csv"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)  # the timeout only keeps a regression from hanging the suite
    assert proc.returncode == 0, proc.stderr
    (_, _, body), = read_csv(proc.stdout)
    assert body == [["D", "CoOp", seed_entry({1: 50.0, 2: 60.0}, expected=2).text()]]  # seed 1 and the linked seed 2
    assert f"{seeds / 'seed3' / 'results.json'}: not a regular file; skipped" in proc.stderr


def test_results_of_a_plain_run_outside_the_layout_are_found(tmp_path):
    """The README's package example: ``train.py ... --output-dir out/coop`` then ``compare.py out``."""
    out = tmp_path / "out"
    assert run_train(["--trainer", "CoOp", "--seed", "1", "--output-dir", out / "coop", *TOY_OPTS,
                      "TRAINER.COOP.N_CTX", "2", "OPTIM.MAX_EPOCH", "1", "DATASET.NUM_SHOTS", "2"]) == 0
    clean = json.loads((out / "coop" / "results.json").read_text())["clean"]["accuracy"]
    (title, header, body), = compare_csv(out)
    assert title == "Runs outside the protocol layout (runs): clean accuracy (%)"
    assert header == ["Method", "ToyColors"] and [row[0] for row in body] == ["CoOp"]
    assert_image_interval(body[0][1], clean)
    assert [(r.protocol, r.shots, r.seed) for r in load_results(out).runs] == [("runs", 2, 1)]
    (_, _, again), = compare_csv(out, "--protocol", "runs")
    assert again == body


def assert_image_interval(entry: str, accuracy: float) -> None:
    """One seed with its per-image record: the accuracy with an interval over its test images (no ‡ fallback)."""
    found = re.fullmatch(r"(\d+\.\d\d) \[(\d+\.\d), (\d+\.\d)\]", entry)
    assert found, entry
    value, low, high = map(float, found.groups())
    assert value == round(accuracy, 2) and low < value < high, entry
