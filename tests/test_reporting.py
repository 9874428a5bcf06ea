"""Result aggregation: tools/compare.py tables (every number checked), tools/parse_test_res.py, renderings, plots.

Expected values are computed here from the specs in ``result_trees`` with their own small helpers (mean,
population std, harmonic mean of the averages), never with the reporting package. A few entries are also written
out by hand as anchors.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path

import pytest

from promptengine.reporting import logs
from promptengine.reporting.cli import compare_main, parse_test_res_main
from promptengine.reporting.results import load_results
from tests import result_trees as rt

SEEDS = (1, 2, 3)
B2N_METHODS = ("CAPT", "CoOp", "VPT")  # rows in default (alphabetical) order
B2N_DATASETS = ("OxfordPets", "SynthShapes")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return rt.build_tree(tmp_path_factory.mktemp("results") / "output")


def run_compare(*argv) -> str:
    out = io.StringIO()
    assert compare_main([str(a) for a in argv], out=out) == 0
    return out.getvalue()


def run_parse(*argv, expect_rc: int = 0) -> str:
    out = io.StringIO()
    assert parse_test_res_main([str(a) for a in argv], out=out) == expect_rc
    return out.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# Independent arithmetic and expected display strings


def avg(values):
    return sum(values) / len(values)


def pop_std(values):
    m = avg(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def hmean(b, n):
    return 2 * b * n / (b + n)


Z95 = 1.959963984540054  # the 97.5 % normal quantile


def jackknife_half(parts, fn):
    """Half-width of the seeds-only interval of ``fn(means of parts)``: 1.96 x the jackknife standard error over seed
    numbers (each part is {seed: value}); None with fewer than two seeds anywhere."""
    seeds = sorted({s for p in parts for s in p})
    if len(seeds) < 2 or any(len(p) < 2 for p in parts):
        return None
    thetas = [fn([avg([v for k, v in p.items() if k != s]) for p in parts]) for s in seeds]
    m, n = avg(thetas), len(thetas)
    return Z95 * math.sqrt((n - 1) / n * sum((t - m) ** 2 for t in thetas))


class Entry:
    """Expected entry: value, seeds-only interval half-width, n, short marker, dagger marker, best flag; ``parts``
    ({seed: value} per seed cell) and ``fn`` (means of parts -> value) say what it is a function of."""

    def __init__(self, value=None, half=None, n=None, short=False, dagger=False, parts=(), fn=None):
        self.value, self.half, self.n, self.short, self.dagger, self.best = value, half, n, short, dagger, False
        self.parts, self.fn = list(parts), fn

    def text(self, star=True):
        if self.value is None:
            return "—"
        s = f"{self.value:.2f}"
        if self.half is not None:
            s += f" [{self.value - self.half:.1f}, {self.value + self.half:.1f}]‡"
        if self.short:
            s += f" (n={self.n})"
        if self.dagger:
            s += "†"
        if self.best and star:
            s += "*"
        return s


def seed_entry(values_by_seed, expected=len(SEEDS)):
    """A seed cell: mean, and the normal interval over seeds: 1.96 x sample std (ddof=1) / sqrt(n)."""
    values = {s: v for s, v in values_by_seed.items() if v is not None}
    if not values:
        return Entry()
    n, m = len(values), avg(list(values.values()))
    half = Z95 * math.sqrt(sum((v - m) ** 2 for v in values.values()) / (n - 1)) / math.sqrt(n) if n > 1 else None
    return Entry(m, half, n, n < expected, parts=[values], fn=lambda means: means[0])


def derived(fn, *inputs, dagger=None):
    """``fn(values of inputs)``, with its jackknife interval over the seed cells the inputs rest on."""
    parts, sizes = [], []
    for e in inputs:
        parts += e.parts
        sizes.append(len(e.parts))

    def composed(means):
        values, i = [], 0
        for e, k in zip(inputs, sizes):
            values.append(e.fn(means[i : i + k]))
            i += k
        return fn(values)

    value = composed([avg(list(p.values())) for p in parts])
    flag = any(e.short or e.dagger for e in inputs) if dagger is None else dagger
    return Entry(value, jackknife_half(parts, composed), dagger=flag, parts=parts, fn=composed)


def mark_best(table, rows, columns):
    """Best = top entry, marked only when the interval of its difference to the runner-up lies above zero."""
    for col in columns:
        present = sorted((table[(r, col)] for r in rows if table[(r, col)].value is not None), key=lambda e: -e.value)
        if len(present) >= 2 and round(present[0].value, 2) > round(present[1].value, 2):
            diff = derived(lambda v: v[0] - v[1], present[0], present[1])
            present[0].best = diff.half is not None and diff.value - diff.half > 0


def expected_base2new(metric: int):
    """{(method, 'Dataset Col'): Entry} for metric 0 (clean) or 1 (robust worst case)."""
    table = {}
    for t in B2N_METHODS:
        base_means, new_means = [], []
        for d in B2N_DATASETS:
            base_vals, new_vals = {}, {}
            for s in SEEDS:
                rec = rt.BASE2NEW.get((t, d, "test_base", s)) or rt.BASE2NEW.get((t, d, "train_base", s))
                if rec:
                    base_vals[s] = rec[metric]
                rec = rt.BASE2NEW.get((t, d, "test_new", s))
                if rec:
                    new_vals[s] = rec[metric]
            b, n = seed_entry(base_vals), seed_entry(new_vals)
            h = derived(lambda v: hmean(*v), b, n) if b.value is not None and n.value is not None else Entry()
            table[(t, f"{d} Base")], table[(t, f"{d} New")], table[(t, f"{d} HM")] = b, n, h
            base_means.append(b)
            new_means.append(n)
        if all(e.value is not None for e in base_means + new_means):
            ab = derived(avg, *base_means)
            an = derived(avg, *new_means)
            table[(t, "Average Base")], table[(t, "Average New")] = ab, an
            table[(t, "Average HM")] = derived(lambda v: hmean(*v), ab, an)
        else:
            table[(t, "Average Base")] = table[(t, "Average New")] = table[(t, "Average HM")] = Entry()
    columns = [f"{d} {c}" for d in B2N_DATASETS + ("Average",) for c in ("Base", "New", "HM")]
    mark_best(table, B2N_METHODS, columns)
    return table, columns


def read_csv(text: str):
    """[(title, header, body rows)] from compare's CSV output."""
    result = []
    rows = list(csv.reader(io.StringIO(text)))
    i = 0
    while i < len(rows):
        row = rows[i]
        if row and row[0].startswith("# ") and len(row) == 1 and i + 1 < len(rows) and len(rows[i + 1]) > 1:
            title, header, body = row[0][2:], rows[i + 1], []
            i += 2
            while i < len(rows) and rows[i] and not rows[i][0].startswith("# "):
                body.append(rows[i])
                i += 1
            result.append((title, header, body))
        else:
            i += 1
    return result


# ---------------------------------------------------------------------------------------------------------------
# compare: base2new


@pytest.mark.parametrize("metric", [0, 1], ids=["clean", "robust"])
def test_base2new_every_number(tree, metric):
    tables = read_csv(run_compare(tree, "--protocol", "base2new", "--format", "csv"))
    assert [t[0].split(": ")[1] for t in tables] == ["clean accuracy (%)", "robust accuracy (%)"]
    title, header, body = tables[metric]
    expected, columns = expected_base2new(metric)
    assert header == ["Method"] + columns
    assert [row[0] for row in body] == list(B2N_METHODS)
    for row in body:
        for column, text in zip(columns, row[1:]):
            assert text == expected[(row[0], column)].text(), (title, row[0], column)


def test_base2new_hand_anchors(tree):
    """A few entries worked out by hand (seed 1 of CoOp/SynthShapes comes from test_base: 80.55, not 80.10)."""
    clean = {
        row[0]: dict(zip(header[1:], row[1:]))
        for _, header, body in read_csv(run_compare(tree, "--protocol", "base2new", "--format", "csv"))[:1]
        for row in body
    }
    # mean(80.55, 81.30, 79.70) = 80.5167, sample std 0.8005, 1.96 * 0.8005 / sqrt(3) = 0.906 -> [79.61, 81.42];
    # best: its differences to CAPT (runner-up) by seed, 1.65, 1.70, 1.50, have mean 1.617 +- 0.118, above zero
    assert clean["CoOp"]["SynthShapes Base"] == "80.52 [79.6, 81.4]‡*"
    assert clean["CoOp"]["SynthShapes New"] == "60.33 [58.7, 61.9]‡"  # sample std 1.4047 -> half-width 1.590
    # 2*80.5167*60.3333/140.85; leave-one-seed-out HMs 69.016, 68.355, 69.564 -> jackknife SE 0.699, half 1.370
    assert clean["CoOp"]["SynthShapes HM"] == "68.98 [67.6, 70.3]‡"
    # seed 3 missing; 87.00, 86.40 -> half 1.96 * 0.3 = 0.588. No longer best: CAPT - CoOp leave-one-out differences
    # 0.85, 1.80, 0.85 give 1.167 +- 1.241, which includes zero
    assert clean["CAPT"]["OxfordPets New"] == "86.70 [86.1, 87.3]‡ (n=2)"
    assert clean["CAPT"]["OxfordPets HM"].startswith("87.69 [") and clean["CAPT"]["OxfordPets HM"].endswith("‡†")
    assert clean["VPT"]["Average HM"] == "—"  # VPT has no OxfordPets runs
    assert clean["CoOp"]["Average Base"].startswith("85.29 [")  # (90.0667 + 80.5167) / 2


def test_base2new_json_matches_independent_arithmetic(tree):
    data = json.loads(run_compare(tree, "--protocol", "base2new", "--format", "json"))
    for metric, table in zip((0, 1), data["tables"]):
        expected, _ = expected_base2new(metric)
        for cell in table["cells"]:
            want = expected[(cell["row"], f"{cell['block']} {cell['column']}")]
            if want.value is None:
                assert cell["mean"] is None
            else:
                assert cell["mean"] == pytest.approx(want.value, abs=1e-9)
                assert (cell["low"] is None) == (want.half is None)
                if want.half is not None:
                    assert cell["interval"] == "seeds"  # these files have no per-image records
                    assert cell["low"] == pytest.approx(want.value - want.half, abs=1e-9)
                    assert cell["high"] == pytest.approx(want.value + want.half, abs=1e-9)
                if cell["n"] and cell["n"] > 1:  # the population std stays in the JSON
                    runs = [v for v in want.parts[0].values()]
                    assert cell["std"] == pytest.approx(pop_std(runs), abs=1e-9)
            assert cell["best"] == want.best


def test_base2new_footnotes_and_robust_attack_sets(tree):
    text = run_compare(tree, "--protocol", "base2new")
    assert "Mean over seeds {1, 2, 3} with its 95% interval [low, high]" in text
    assert "‡: no per-image records in these results, so the interval is over seeds only" in text
    assert "No best mark in 2 dataset/column pair(s): the runner-up is within noise" in text  # OxfordPets New, HM
    assert "HM = 2·Base·New/(Base+New) of the seed-averaged Base and New" in text
    assert "{pgd100, linf, eps=1/255} for CoOp" in text
    assert "{pgd100, linf, eps=1/255; cw30, linf, eps=1/255} for CAPT" in text
    assert "CAPT · OxfordPets · New: seed 3" in text
    assert "VPT · OxfordPets · Base: seed 1, 2, 3" in text


def test_trainer_filter_order_and_expected_seeds(tree):
    (_, header, body), _ = read_csv(
        run_compare(
            tree, "--protocol", "base2new", "--format", "csv", "--trainers", "CoOp", "CAPT", "--seeds", "1", "2", "3", "4"
        )
    )
    assert [row[0] for row in body] == ["CoOp", "CAPT"]
    cells = dict(zip(header[1:], body[0][1:]))
    assert cells["SynthShapes Base"] == "80.52 [79.6, 81.4]‡ (n=3)*"
    assert cells["Average HM"] == "78.63 [77.9, 79.3]‡†"


def test_partial_averages(tree):
    (_, header, body), _ = read_csv(run_compare(tree, "--protocol", "base2new", "--format", "csv", "--partial-averages"))
    vpt = dict(zip(header[1:], [row for row in body if row[0] == "VPT"][0][1:]))
    # mean over the one dataset present (its own interval: sample std 0.9165 -> half 1.037), never best
    assert vpt["Average Base"] == "75.20 [74.2, 76.2]‡ [1/2]"
    base, new = seed_entry({1: 75.0, 2: 76.2, 3: 74.4}), seed_entry({1: 58.8, 2: 57.6, 3: 59.9})
    assert vpt["Average HM"] == f"{derived(lambda v: hmean(*v), base, new).text()} [1/2]"


# ---------------------------------------------------------------------------------------------------------------
# compare: few-shot, xd


@pytest.mark.parametrize("metric", [0, 1], ids=["clean", "robust"])
def test_fewshot_every_number(tree, metric):
    tables = read_csv(run_compare(tree, "--protocol", "fewshot", "--format", "csv"))
    _, header, body = tables[metric]
    shots = (1, 4, 16)
    columns = ["1 shot", "4 shots", "16 shots"]
    assert header == ["Dataset", "Method"] + columns
    methods, datasets = ("CAPT", "CoOp"), ("OxfordPets", "SynthShapes")
    expected = {}
    for d in datasets:
        for t in methods:
            for k, col in zip(shots, columns):
                vals = {s: rt.FEWSHOT[(t, d, k, s)][metric] for s in (1, 2) if (t, d, k, s) in rt.FEWSHOT}
                expected[(d, t, col)] = seed_entry(vals, expected=2)
    for t in methods:
        for col in columns:
            parts = [expected[(d, t, col)] for d in datasets]
            ok = all(p.value is not None for p in parts)
            expected[("Average", t, col)] = derived(avg, *parts) if ok else Entry()
    for d in datasets + ("Average",):
        table = {(t, c): expected[(d, t, c)] for t in methods for c in columns}
        mark_best(table, methods, columns)
    assert [(row[0], row[1]) for row in body] == [(d, t) for d in datasets + ("Average",) for t in methods]
    for row in body:
        for col, text in zip(columns, row[2:]):
            assert text == expected[(row[0], row[1], col)].text(), (row[0], row[1], col)
    assert expected[("Average", "CAPT", "16 shots")].value is None  # no CAPT/OxfordPets 16-shot runs


@pytest.mark.parametrize("metric", [0, 1], ids=["clean", "robust"])
def test_xd_every_number(tree, metric):
    _, header, body = read_csv(run_compare(tree, "--protocol", "xd", "--format", "csv"))[metric]
    targets = ("OxfordPets", "SynthSketch")
    assert header == ["Method", "SynthShapes (source)", *targets, "Average"]
    methods = ("CAPT", "CoOp")
    table = {}
    for t in methods:
        table[(t, "SynthShapes (source)")] = seed_entry(
            {s: rt.XD[(t, rt.XD_SOURCE, "train", s)][metric] for s in (1, 2)}, expected=2
        )
        for d in targets:
            table[(t, d)] = seed_entry({s: rt.XD[(t, d, "test", s)][metric] for s in (1, 2)}, expected=2)
        table[(t, "Average")] = derived(avg, *(table[(t, d)] for d in targets))
    mark_best(table, methods, header[1:])
    for row in body:
        for col, text in zip(header[1:], row[1:]):
            assert text == table[(row[0], col)].text(), (row[0], col)


# ---------------------------------------------------------------------------------------------------------------
# Renderings


def test_markdown_latex_terminal_renderings(tree):
    md = run_compare(tree, "--protocol", "base2new", "--format", "markdown")
    assert md.startswith("### Base-to-new generalization (base2new): clean accuracy (%)")
    assert "| Method" in md and "**80.52 [79.6, 81.4]‡**" in md and "| 86.70 [86.1, 87.3]‡ (n=2) |" in md
    assert "80.52 [79.6, 81.4]‡*" not in md.replace("**", "")  # no terminal star in Markdown
    tex = run_compare(tree, "--protocol", "base2new", "--format", "latex")
    assert r"\begin{tabular}{lccccccccc}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"\multicolumn{3}{c}{OxfordPets}" in tex and r"\cmidrule(lr){2-4}" in tex
    assert r"\textbf{80.52 [79.6, 81.4]$^\ddagger$}" in tex and r"87.69 [87.3, 88.1]$^\ddagger$$^\dagger$" in tex
    assert r"VPT & --- & --- & ---" in tex
    long_tex = run_compare(tree, "--protocol", "xd", "--format", "latex", "--layout", "long")
    assert r"Dataset & Method & Accuracy \\" in long_tex and r"\midrule" in long_tex
    term = run_compare(tree, "--protocol", "base2new")
    assert "== Base-to-new generalization (base2new): clean accuracy (%) ==" in term
    assert "80.52 [79.6, 81.4]‡*" in term and "*: best per dataset and column" in term
    long_csv = read_csv(run_compare(tree, "--protocol", "base2new", "--format", "csv", "--layout", "long"))
    _, header, body = long_csv[0]
    assert header == ["Dataset", "Method", "Base", "New", "HM"]
    assert body[0] == ["OxfordPets", "CAPT", "88.70 [88.1, 89.3]‡", "86.70 [86.1, 87.3]‡ (n=2)", "87.69 [87.3, 88.1]‡†"]


def test_latex_escapes_labels(tmp_path):
    rt.write_run(tmp_path, "xd", "test", "Synth_Set", "My_CoOp", 1, 50.0)
    rt.write_run(tmp_path, "xd", "test", "Synth_Set", "Other", 1, 60.0)
    tex = run_compare(tmp_path, "--format", "latex")
    assert r"My\_CoOp" in tex and r"Synth\_Set" in tex


def test_out_file_and_errors(tree, tmp_path, capsys):
    target = tmp_path / "tables" / "b2n.md"
    assert compare_main([str(tree), "--protocol", "base2new", "--format", "markdown", "--out", str(target)]) == 0
    assert target.read_text().startswith("### Base-to-new")
    assert compare_main([str(tree), "--protocol", "dg"]) == 2
    assert "no results.json for protocol dg" in capsys.readouterr().err
    assert compare_main([str(tmp_path / "nowhere")]) == 2


# ---------------------------------------------------------------------------------------------------------------
# Plots


def test_plots_written(tree, tmp_path):
    pytest.importorskip("matplotlib")
    run_compare(tree, "--plots", tmp_path)
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == [
        "base2new_clean_vs_robust.png",
        "fewshot_accuracy_vs_shots.png",
        "fewshot_clean_vs_robust.png",
        "xd_accuracy_vs_eps.png",
        "xd_clean_vs_robust.png",
    ]
    for name in names:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eps_curves_use_only_budget_sweeps(tree):
    from promptengine.reporting import aggregate, plots

    sel = aggregate.select("xd", load_results(tree).runs)
    curves = plots.eps_curves(sel)
    assert set(curves) == {("OxfordPets", "Accuracy"), ("SynthSketch", "Accuracy")}
    line = curves[("OxfordPets", "Accuracy")][("CAPT", "pgd10 linf")]
    # clean at eps 0, then pgd10 at 1, 2, 4 /255 = worst + (2, 1, 0), each the mean of seeds 1 and 2
    assert line == pytest.approx({0.0: 62.5, 1.0: 32.5, 2.0: 31.5, 4.0: 30.5})


def test_plots_without_matplotlib_is_one_line_error(tree, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert compare_main([str(tree), "--plots", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --plots needs matplotlib, which is not installed: pip install matplotlib"


# ---------------------------------------------------------------------------------------------------------------
# Loading


def test_loader_skips_and_warns(tmp_path):
    good = rt.write_run(tmp_path, "fewshot", "train", "SynthShapes", "CoOp", 1, 50.0, shots=-1)
    stray = tmp_path / "somewhere" / "results.json"
    stray.parent.mkdir()
    stray.write_text((good / "results.json").read_text())
    val = rt.write_run(tmp_path, "fewshot", "train", "SynthShapes", "CoOp", 2, 40.0, shots=-1)
    data = json.loads((val / "results.json").read_text())
    (val / "results.json").write_text(json.dumps(dict(data, split="val")))
    unplaceable = tmp_path / "elsewhere" / "results.json"  # outside the layout and recording no seed
    unplaceable.parent.mkdir()
    unplaceable.write_text(json.dumps({k: v for k, v in json.loads(stray.read_text()).items() if k != "seed"}))
    report = load_results(tmp_path)
    # the stray copy outside the layout is placed by its own record, in the "runs" table
    assert [(r.protocol, r.shots, r.seed, r.clean) for r in report.runs] == [("fewshot", -1, 1, 50.0),
                                                                             ("runs", -1, 1, 50.0)]
    assert any(f"{unplaceable}: outside the" in w and "no usable seed" in w for w in report.warnings)
    assert any("split 'val'" in w for w in report.warnings)
    assert "all shots" in run_compare(tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# parse_test_res


def b2n_dir(tree, phase, dataset, trainer):
    return rt.run_dir(tree, "base2new", phase, dataset, trainer, 1).parent


def attack_values(trainer, worst_values):
    """Per-attack accuracies printed in the logs: worst case + offset."""
    return {name: [round(w + off, 2) for w in worst_values] for (name, _), off in rt.ATTACK_SETS[trainer]}


def summary_lines(text):
    block = text.split("===")[1]
    return [line for line in block.strip().splitlines() if line.startswith("* ")]


def test_parse_clean_and_robust_separated_with_rerun_logs(tree):
    out = run_parse(b2n_dir(tree, "train_base", "SynthShapes", "CAPT"))
    files = [line for line in out.splitlines() if line.startswith("file: ")]
    assert files[1].startswith(f"file: {b2n_dir(tree, 'train_base', 'SynthShapes', 'CAPT')}/seed2/log.txt-2026-11-24")
    assert "70.00" not in out  # the superseded log.txt of seed 2 is not read
    clean = [rt.BASE2NEW[("CAPT", "SynthShapes", "train_base", s)][0] for s in SEEDS]
    worst = [rt.BASE2NEW[("CAPT", "SynthShapes", "train_base", s)][1] for s in SEEDS]
    want = [f"* accuracy: {avg(clean):.2f}% +- {pop_std(clean):.2f}%"]
    want += [
        f"* robust_accuracy ({name}): {avg(v):.2f}% +- {pop_std(v):.2f}%" for name, v in attack_values("CAPT", worst).items()
    ]
    assert summary_lines(out) == want
    assert "33.00" not in out  # the mid-training val block precedes "Finish training"


def test_parse_crashed_rerun_falls_back_and_ci95(tree):
    out = run_parse(b2n_dir(tree, "train_base", "OxfordPets", "CoOp"), "--ci95")
    assert f"{b2n_dir(tree, 'train_base', 'OxfordPets', 'CoOp')}/seed3/log.txt. accuracy: 90.70%" in out
    clean = [rt.BASE2NEW[("CoOp", "OxfordPets", "train_base", s)][0] for s in SEEDS]
    worst = [rt.BASE2NEW[("CoOp", "OxfordPets", "train_base", s)][1] for s in SEEDS]
    ci = 1.96 * pop_std(clean) / math.sqrt(3)
    assert summary_lines(out) == [
        f"* accuracy: {avg(clean):.2f}% +- {ci:.2f}%",
        f"* robust_accuracy (pgd100, linf, eps=1/255): {avg(worst):.2f}% +- {1.96 * pop_std(worst) / 3**0.5:.2f}%",
    ]


def test_parse_test_log_and_robust_keyword(tree):
    directory = b2n_dir(tree, "test_new", "OxfordPets", "CAPT")
    assert run_parse(directory, expect_rc=2).count('missing: no log with "Finish training"') == 2
    out = run_parse(directory, "--test-log")
    clean = [rt.BASE2NEW[("CAPT", "OxfordPets", "test_new", s)][0] for s in (1, 2)]
    assert summary_lines(out)[0] == f"* accuracy: {avg(clean):.2f}% +- {pop_std(clean):.2f}%"
    robust = run_parse(directory, "--test-log", "--keyword", "robust_accuracy")
    lines = summary_lines(robust)
    assert len(lines) == 2 and all(line.startswith("* robust_accuracy (") for line in lines)
    assert "* accuracy:" not in robust and " accuracy: " not in robust.replace("robust_accuracy", "")
    f1 = run_parse(directory, "--test-log", "--keyword", "macro_f1")
    assert summary_lines(f1)[0] == f"* macro_f1: {avg(clean) - 1:.2f}% +- {pop_std(clean):.2f}%"


def test_parse_missing_seed_reports_n(tree, tmp_path):
    for seed, clean in ((1, 50.0), (2, 52.0)):
        rt.write_run(tmp_path, "fewshot", "train", "D", "T", seed, clean, [(rt.PGD100, 10.0 + seed)])
    (rt.run_dir(tmp_path, "fewshot", "train", "D", "T", 3)).mkdir()
    out = run_parse(rt.run_dir(tmp_path, "fewshot", "train", "D", "T", 1).parent)
    assert "seed3. missing: no log.txt" in out
    assert summary_lines(out) == [
        "* accuracy: 51.00% +- 1.00% (n=2 of 3)",
        "* robust_accuracy (pgd100, linf, eps=1/255): 11.50% +- 0.50% (n=2 of 3)",
    ]


def test_parse_multi_exp(tmp_path):
    values = {"expA": [(60.0, 20.0), (62.0, 22.0)], "expB": [(70.0, 30.0), (71.0, 33.0)]}
    for exp, runs in values.items():
        for seed, (clean, robust) in enumerate(runs, 1):
            d = tmp_path / exp / f"seed{seed}"
            d.mkdir(parents=True)
            (d / "log.txt").write_text(rt.log_text(clean, [(rt.PGD100[0], robust)]))
    out = run_parse(tmp_path, "--multi-exp")
    assert out.count("Summary of directory") == 2
    tail = out.split("Average performance")[1].strip().splitlines()
    means = {exp: (avg([c for c, _ in r]), avg([x for _, x in r])) for exp, r in values.items()}
    assert tail == [
        f"* accuracy: {avg([m[0] for m in means.values()]):.2f}%",
        f"* robust_accuracy (pgd100, linf, eps=1/255): {avg([m[1] for m in means.values()]):.2f}%",
    ]


def test_old_dassl_signal_and_log_order(tmp_path):
    (tmp_path / "log.txt").write_text(rt.log_text(40.0, [], signal="Finished training"))
    (tmp_path / "log.txt-2026-01-02-00-00-00").write_text(rt.log_text(41.0, []))
    (tmp_path / "log.txt-2026-01-10-00-00-00").write_text(rt.log_text(42.0, [], complete=False))
    (tmp_path / "log.txt.bak").write_text(rt.log_text(99.0, []))
    assert [p.name for p in logs.list_logs(tmp_path)] == ["log.txt-2026-01-10-00-00-00", "log.txt-2026-01-02-00-00-00", "log.txt"]
    assert logs.read_run(tmp_path).values == {"accuracy": 41.0}
    (tmp_path / "log.txt-2026-01-02-00-00-00").unlink()
    assert logs.read_run(tmp_path).values == {"accuracy": 40.0}


def test_configs_per_setting_form_one_row(tmp_path):
    """CoOp's few-shot recipe uses one config per shot count: one row. Two configs on the same cells: two rows."""
    for shots, config, clean in ((1, "ep50", 40.0), (4, "ep100", 50.0), (16, "ep200", 60.0)):
        rt.write_run(tmp_path, "fewshot", "train", "D", "CoOp", 1, clean, shots=shots, config=config, log=False)
    for config, clean in (("a", 61.0), ("b", 62.0)):
        rt.write_run(tmp_path, "fewshot", "train", "D", "CAPT", 1, clean, shots=16, config=config, log=False)
    (_, header, body), *_ = read_csv(run_compare(tmp_path, "--format", "csv"))
    assert header == ["Dataset", "Method", "1 shot", "4 shots", "16 shots"]
    assert body == [
        ["D", "CAPT/a", "—", "—", "61.00"],
        ["D", "CAPT/b", "—", "—", "62.00"],  # one seed, no per-image records: no interval, so no best mark
        ["D", "CoOp", "40.00", "50.00", "60.00"],
    ]
    assert "CoOp combines the configs ep100, ep200, ep50" in run_compare(tmp_path)


def test_single_run_folder_and_subsample_warning(tmp_path):
    run = rt.write_run(tmp_path, "base2new", "test_new", "D", "T", 1, 55.0, [(rt.PGD100, 20.0)])
    (run / "tensorboard").mkdir()
    out = run_parse(run, "--test-log")
    assert summary_lines(out) == ["* accuracy: 55.00% +- 0.00%", "* robust_accuracy (pgd100, linf, eps=1/255): 20.00% +- 0.00%"]
    data = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps(dict(data, subsample="base")))
    assert any("subsample 'base' in a test_new folder" in w for w in load_results(tmp_path).warnings)


def test_tools_do_not_import_torch():
    import subprocess

    code = "import sys, promptengine.reporting.cli; sys.exit('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


def test_dg_table_and_dataset_filter(tmp_path):
    for trainer, offset in (("CoOp", 0.0), ("CAPT", 1.0)):
        rt.write_run(tmp_path, "dg", "train", "SynthShapes", trainer, 1, 80.0 + offset, log=False)
        for target, clean in (("SynthSketch", 40.0), ("SynthNoise", 50.0)):
            rt.write_run(tmp_path, "dg", "test", target, trainer, 1, clean + offset, log=False)
    text = run_compare(tmp_path, "--format", "csv", "--datasets", "SynthSketch", "SynthNoise")
    (title, header, body), *_ = read_csv(text)
    assert title == "Domain generalization (dg): clean accuracy (%)"
    assert header == ["Method", "SynthShapes (source)", "SynthSketch", "SynthNoise", "Average"]
    # one seed and no per-image records: no interval and no best mark (a one-point lead is not evidence)
    assert body == [["CAPT", "81.00", "41.00", "51.00", "46.00"], ["CoOp", "80.00", "40.00", "50.00", "45.00"]]
    assert len(read_csv(text)) == 1  # no attacks anywhere: no robust table
    (_, header, _), *_ = read_csv(run_compare(tmp_path, "--format", "csv", "--datasets", "SynthNoise"))
    assert header == ["Method", "SynthShapes (source)", "SynthNoise"]  # one target: no Average


def _with_identity(path: Path, lr: float, seed: int) -> None:
    """Give a written record a run identity (as train.py does) whose setting differs only by the learning rate."""
    from promptengine.engine import identity as ident

    full = {"trainer": "CAPT", "model": {"TRAINER.CAPT.LAMBDA": 3.0}, "train": {"OPTIM.LR": lr, "SEED": seed},
            "data": {"DATASET.NAME": "SynthShapes"}, "eval": {"TEST.MAX_IMAGES": -1}, "weights": {"source": "this run"}}
    record = json.loads((path / "results.json").read_text())
    record["identity"] = ident.summary(full)
    (path / "results.json").write_text(json.dumps(record))
    (path / "identity.json").write_text(json.dumps(ident.summary(full)))


def test_different_identities_are_never_averaged(tmp_path, capsys):
    """Seeds 1-2 ran with lr 0.002, seed 3 with lr 0.02 in the same folder: two rows, never one mean, and a warning."""
    root = tmp_path / "out"
    for seed, lr, clean in ((1, 0.002, 80.0), (2, 0.002, 82.0), (3, 0.02, 40.0)):
        path = rt.write_run(root, "fewshot", "train", "SynthShapes", "CAPT", seed, clean, [(rt.PGD100, 20.0)])
        _with_identity(path, lr, seed)
    text = run_compare(root, "--protocol", "fewshot", "--format", "csv")
    clean = text.split("robust accuracy")[0]
    rows = [r for r in csv.reader(io.StringIO(clean)) if len(r) > 2 and r[1].startswith("CAPT")]
    assert sorted(r[1:] for r in rows) == [["CAPT [setting 1]", "81.00 [79.0, 83.0]‡ (n=2)"],
                                              ["CAPT [setting 2]", "40.00 (n=1)"]]
    assert "67.33" not in text  # the mean of all three seeds would mix two settings
    err = capsys.readouterr().err
    assert "2 different run settings" in err and "'train.OPTIM.LR'" in err
    # parse_test_res: separate summaries and a warning; --multi-exp leaves the mixed experiment out
    parsed = run_parse(root / "fewshot" / "train" / "SynthShapes" / "shots_16" / "CAPT" / "synth")
    assert parsed.count("Summary of directory") == 2 and "81.00%" in parsed and "40.00%" in parsed
    assert "67.33" not in parsed and "2 different identities" in capsys.readouterr().err


def test_zero_image_results_are_skipped(tmp_path, capsys):
    root = tmp_path / "out"
    rt.write_run(root, "fewshot", "train", "SynthShapes", "CoOp", 1, 80.0)
    empty = rt.write_run(root, "fewshot", "train", "SynthShapes", "CoOp", 2, 0.0)
    record = json.loads((empty / "results.json").read_text())
    record["num_images"] = 0
    record["clean"].update(total=0, correct=0)
    (empty / "results.json").write_text(json.dumps(record))
    report = load_results(root)
    assert [r.seed for r in report.runs] == [1]
    assert any("zero images" in w for w in report.warnings)
