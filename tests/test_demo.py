"""The README's demo command, at its ci size (same code path as the full demo, tiny budget)."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_demo_ci_size_runs_and_prints_tables_with_intervals(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PROMPTENGINE_CACHE=str(tmp_path / "cache"))
    # two of the six methods (zero-shot and adversarial prompts; CAPT also runs the transfer protocols): every
    # method's own scripts are run by tests/test_scripts.py, so the demo's code path needs no more here
    res = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "demo.py"), "--size", "ci", "--output",
                          str(tmp_path / "demo"), "--methods", "zsclip", "capt"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    for title in ("base2new): clean accuracy", "base2new): robust accuracy", "(xd): clean", "(dg): robust"):
        assert title in out
    for method in ("ZeroshotCLIP", "CAPT"):
        assert method in out
    # every entry has its interval over test images (one seed, per-image records in every results.json)
    assert "95% interval, hierarchical percentile bootstrap over seeds and test images" in out and "‡" not in out
    assert (tmp_path / "demo" / "plots" / "base2new_clean_vs_robust.png").exists()


def test_demo_runs_sharing_a_source_model_form_one_chain():
    """Cross-dataset and domain-shift runs of one method reuse one trained source model: running them at once would
    train it twice into the same folder, so the demo chains them (the first trains, the second reuses)."""
    from tools.demo import chains

    jobs = [("coop", "base2new", ["a"]), ("apt", "base2new", ["a"]), ("coop", "xd", ["1"]), ("apt", "xd", ["1"]),
            ("coop", "dg", ["1"]), ("apt", "dg", ["1"])]
    got = chains(jobs)
    assert [("coop", "xd", ["1"]), ("coop", "dg", ["1"])] in got and [("apt", "xd", ["1"]), ("apt", "dg", ["1"])] in got
    assert [("coop", "base2new", ["a"])] in got and sorted(j for c in got for j in c) == sorted(jobs)
