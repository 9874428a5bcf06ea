"""Smoke run of the performance benchmark at tiny size (no timing assertions): it builds the real CAPT trainer,
times every case once, prints the tables and writes the JSON; the exactness checks it reports must hold."""

import json
import os
import runpy

from tests.conftest import ROOT


def test_bench_tiny_smoke(tmp_path, capsys):
    from promptengine.bench.run import main

    out = tmp_path / "bench.json"
    args = ["--arch", "tiny-p8-32", "--classes", "6", "--batch", "2", "--steps", "2", "--repeats", "1", "--warmup", "0",
            "--eval-steps", "2", "--prompt-depth", "2", "--json", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    print(text)
    for row in ("step", "reference_full77", "eval", "text_train_full77", "step/floor", "eval/floor", "reference/step"):
        assert row in text
    res = json.loads(out.read_text())
    assert set(res["floors"]) == {"step", "eval"}
    assert res["floors"]["step"]["terms"] == {"pgd_input_grad": 2, "image_train": 2, "text_train": 1, "frozen_forward": 1}
    assert all(c["median_s"] > 0 and c["peak_mib"] > 0 for c in res["cases"].values())
    # the reference-style steps do the engine's math: same loss, same update
    for name, value in res["checks"]["steps"].items():
        assert value < 1e-5, (name, value)
    trunc = res["checks"]["truncation"]
    assert trunc["tokens_kept"] < trunc["tokens_full"] == 77 and trunc["min_cosine"] > 0.99999


def test_bench_cli_imports():
    ns = runpy.run_path(os.path.join(ROOT, "tools", "bench.py"), run_name="bench_import_check")
    assert callable(ns["main"])


def test_bench_defense_section_times_every_registered_defense(tmp_path, capsys):
    from promptengine.bench.defenses import defense_methods
    from promptengine.bench.run import main

    found = defense_methods()
    assert {"TTC", "RTPT"} <= set(found) and not {"CoOp", "ZeroshotCLIP", "CAPT"} & set(found)
    out = tmp_path / "bench.json"
    assert main(["--arch", "tiny-p8-32", "--classes", "3", "--batch", "1", "--eval-steps", "1", "--repeats", "1",
                 "--warmup", "0", "--only", "defense", "--defense-opts", "TRAINER.RTPT.VIEWS", "2", "--json",
                 str(out)]) == 0
    text = capsys.readouterr().out
    assert "test-time defenses: seconds per image" in text
    rows = json.loads(out.read_text())["defenses"]
    assert list(rows) == ["undefended", *found]  # every defense the registry has, none named here
    assert set(rows["undefended"]) == {"clean s/img", "clean x", "pgd s/img", "pgd x"} and rows["undefended"]["clean x"] == 1
    for name in found:
        assert set(rows[name]) == {f"{c} {u}" for c in ("clean", "pgd", "through") for u in ("s/img", "x")}
        assert all(v > 0 for v in rows[name].values())
