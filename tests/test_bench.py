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
