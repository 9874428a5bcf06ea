"""Intervals over seeds and test images (docs/EXPERIMENTS.md): the bootstrap against exact distributions and against a
naive resampling written here from the definition, paired comparisons, the seeds-only fallback, best marks that
disappear within noise, and the --pairwise view.

Reference numbers are computed here independently: exact binomial/trinomial/mixture distributions with ``math``,
a literal "resample seeds, then images" loop with ``random.choices``, and hand arithmetic in the comments.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random

import pytest

from promptengine.reporting import intervals as iv
from promptengine.reporting.bootstrap import BinomialTable, binomial
from promptengine.reporting.cli import compare_main
from promptengine.reporting.results import load_results
from tests import result_trees as rt


def flags(n, *ranges):
    """n flags, True on the given (start, stop) ranges."""
    out = [False] * n
    for start, stop in ranges:
        for i in range(start, stop):
            out[i] = True
    return out


def record(seed, flag_list, items="items-A"):
    n = len(flag_list)
    bits = sum(1 << i for i, f in enumerate(flag_list) if f)
    return iv.SeedRecord(seed, 100.0 * sum(flag_list) / n, n, f"{n}:{items}", bits)


def quantile(pmf, q):
    """Smallest support point whose CDF reaches q; pmf = sorted [(value, probability)]."""
    acc = 0.0
    for value, prob in pmf:
        acc += prob
        if acc >= q - 1e-12:
            return value
    return pmf[-1][0]


def compare(*argv):
    out = io.StringIO()
    assert compare_main([str(a) for a in argv], out=out) == 0
    return out.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# The sampler


def log_binom_pmf(n, p, k):
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)


@pytest.mark.parametrize("n,p,how", [(40, 0.3, "btrs"), (2400, 0.004, "inversion"), (300, 0.8, "btrs"),
                                     (2400, 0.3, "table")])
def test_binomial_draws_follow_the_exact_distribution(n, p, how):
    rng = random.Random(5)
    if how == "table":
        table = BinomialTable(n, p)
        draws = [table.sample(rng.random()) for _ in range(20000)]
    else:
        draws = [binomial(rng, n, p) for _ in range(20000)]
    counts = [0] * (n + 1)
    for d in draws:
        counts[d] += 1
    cdf = emp = ks = 0.0
    for k in range(n + 1):
        cdf += math.exp(log_binom_pmf(n, p, k))
        emp += counts[k] / len(draws)
        ks = max(ks, abs(cdf - emp))
    assert ks < 0.014, ks  # Kolmogorov distance; 1.95/sqrt(20000) is the 99.9 % bound for a continuous law


# ---------------------------------------------------------------------------------------------------------------
# Exact checks


@pytest.mark.parametrize("only_a,only_b,excludes", [(30, 10, True), (22, 14, False)])
def test_paired_difference_matches_the_exact_trinomial(only_a, only_b, excludes):
    """One seed, 400 images: A and B agree on 200 right images; A alone is right on ``only_a`` more, B alone on
    ``only_b``. Resampling images, A - B = 100 * (D_a - D_b) / 400 with (D_a, D_b) trinomial: by hand, 30 vs 10 is
    5.0 +- 1.96 * 100 * sqrt(400 * (0.1 - 0.05**2)) / 400 = [1.9, 8.1] (excludes 0), 22 vs 14 is 2.0 +- 2.9 (includes
    0). Unpaired (each method's images drawn on their own), 30 vs 10 would be 5.0 +- 6.9."""
    n = 400
    a = record(1, flags(n, (0, 200), (200, 200 + only_a)))
    b = record(1, flags(n, (0, 200), (300, 300 + only_b)))
    pa, pb = only_a / n, only_b / n
    pmf = {}
    for x in range(0, 120):
        for y in range(0, 120):
            logp = (math.lgamma(n + 1) - math.lgamma(x + 1) - math.lgamma(y + 1) - math.lgamma(n - x - y + 1)
                    + x * math.log(pa) + y * math.log(pb) + (n - x - y) * math.log1p(-pa - pb))
            d = 100.0 * (x - y) / n
            pmf[d] = pmf.get(d, 0.0) + math.exp(logp)
    exact = sorted(pmf.items())
    got = iv.paired_diff_interval([a], [b])
    assert got.method == iv.BOOTSTRAP and got.estimate == pytest.approx(100.0 * (only_a - only_b) / n)
    assert got.low == pytest.approx(quantile(exact, 0.025), abs=0.3)  # one support step is 0.25
    assert got.high == pytest.approx(quantile(exact, 0.975), abs=0.3)
    assert got.above_zero is excludes and not got.below_zero


def test_mean_interval_matches_the_exact_seeds_then_images_mixture():
    """Three seeds, 60 images, nested right answers: seed 1 right on 30 images, seed 2 on those and 6 more, seed 3
    on those and 6 more (50, 60, 70 %). A draw resamples the seeds (multinomial counts w, 10 outcomes) and then the
    images; given w, the drawn total is a sum of 60 draws of a value that is 3 (30 images), w2 + w3 (6), w3 (6) or
    0 (18). The exact law of the mean is that mixture; without the seed level the interval would be 5 points
    narrower."""
    n = 60
    recs = [record(1, flags(n, (0, 30))), record(2, flags(n, (0, 36))), record(3, flags(n, (0, 42)))]
    mixture = {}
    for w1 in range(4):
        for w2 in range(4 - w1):
            w3 = 3 - w1 - w2
            weight = math.factorial(3) / (math.factorial(w1) * math.factorial(w2) * math.factorial(w3)) / 27
            step = {}
            for value, count in ((3, 30), (w2 + w3, 6), (w3, 6), (0, 18)):
                step[value] = step.get(value, 0.0) + count / n
            dist = {0: 1.0}
            for _ in range(n):  # the total of n independent draws
                nxt = {}
                for total, prob in dist.items():
                    for value, q in step.items():
                        nxt[total + value] = nxt.get(total + value, 0.0) + prob * q
                dist = nxt
            for total, prob in dist.items():
                key = 100.0 * total / (3 * n)
                mixture[key] = mixture.get(key, 0.0) + weight * prob
    exact = sorted(mixture.items())
    got = iv.mean_interval(recs, draws=4000)
    assert got.method == iv.BOOTSTRAP and got.estimate == pytest.approx(60.0) and got.seeds == 3
    assert got.low == pytest.approx(quantile(exact, 0.025), abs=0.8)  # support step 0.56
    assert got.high == pytest.approx(quantile(exact, 0.975), abs=0.8)


def naive_average_diff(datasets_a, datasets_b, draws, rng):
    """The definition, literally: draw seed numbers with replacement (one draw for all datasets: the seed number is
    the unit), then per dataset draw image indices with replacement (the same for A and B), average."""
    seeds = [r.seed for r in datasets_a[0]]
    values = []
    for _ in range(draws):
        drawn = rng.choices(range(len(seeds)), k=len(seeds))
        per_dataset = []
        for recs_a, recs_b in zip(datasets_a, datasets_b):
            n = recs_a[0].n
            idx = rng.choices(range(n), k=n)
            total = 0
            for s in drawn:
                ba, bb = recs_a[s].bits, recs_b[s].bits
                total += sum((ba >> i & 1) - (bb >> i & 1) for i in idx)
            per_dataset.append(100.0 * total / (len(drawn) * n))
        values.append(sum(per_dataset) / len(per_dataset))
    values.sort()
    return values[int(0.025 * draws)], values[int(0.975 * draws)]


def test_average_difference_agrees_with_a_naive_resampling_of_seeds_and_images():
    """Two datasets, three seeds, 50 images each. A's seed 3 is better on both datasets (a seed effect shared by the
    datasets, as when one source model per seed is tested on several targets), and A and B agree on most images."""
    n, gen = 50, random.Random(11)
    datasets_a, datasets_b = [], []
    for d in range(2):
        base = [gen.random() < 0.6 for _ in range(n)]
        recs_a, recs_b = [], []
        for seed in (1, 2, 3):
            lift = 0.25 if seed == 3 else 0.0
            fa = [f or gen.random() < lift for f in base]
            fa = [f if gen.random() > 0.06 else not f for f in fa]
            fb = [f if gen.random() > 0.06 else not f for f in base]
            recs_a.append(record(seed, fa, f"d{d}"))
            recs_b.append(record(seed, fb, f"d{d}"))
        datasets_a.append(recs_a)
        datasets_b.append(recs_b)
    got = iv.average_diff_interval(datasets_a, datasets_b, draws=3000)
    lo, hi = naive_average_diff(datasets_a, datasets_b, 3000, random.Random(3))
    width = hi - lo
    assert got.method == iv.BOOTSTRAP
    assert got.low == pytest.approx(lo, abs=0.12 * width) and got.high == pytest.approx(hi, abs=0.12 * width)


def test_average_over_datasets_resamples_seed_numbers_jointly():
    """Seed 3 is right on every image of both datasets, seeds 1 and 2 on none: a draw's value is 100 * w3 / 3 on
    each dataset, whatever images it draws. Resampling seed numbers once for both datasets, the average is 100 with
    probability (1/3)^3 = 3.7 % > 2.5 %, so the upper bound is 100; with independent seed draws per dataset it would
    be 66.7 (the average reaches 83.3 or more with probability 6/729 + 6/729 + 1/729 = 1.8 %)."""
    datasets = [[record(s, [s == 3] * 30, f"d{d}") for s in (1, 2, 3)] for d in range(2)]
    got = iv.average_interval(datasets)
    assert got.estimate == pytest.approx(100 / 3)
    assert (got.low, got.high) == (0.0, pytest.approx(100.0))


def test_hm_interval_resamples_base_and_new_images_independently():
    """HM of one seed's base (120 of 200 right) and new (80 of 200 right) accuracy: 48.0. With independent image
    draws its spread is the delta-method one, sqrt(dH/dB^2 var B + dH/dN^2 var N) = 2.73 points (dH/dB = 2N^2/(B+N)^2
    = 0.32, dH/dN = 0.72, var = 60 * 40 / 200 = 12 points^2 each); the 95 % interval is about 48.0 +- 5.35. Drawn
    jointly (as if base and new were the same images: 80 images right in both) it would be 48.0 +- 6.5."""
    base = record(1, flags(200, (0, 120)), "base")
    new = record(1, flags(200, (0, 80)), "new")
    got = iv.hm_interval([base], [new])
    assert got.estimate == pytest.approx(2 * 60 * 40 / 100)
    assert got.low == pytest.approx(48.0 - 5.35, abs=0.5) and got.high == pytest.approx(48.0 + 5.35, abs=0.5)
    same = iv.hm_diff_interval([base], [new], [base], [new])
    assert (same.low, same.high, same.estimate) == (0.0, 0.0, 0.0)  # a method against itself: no noise at all


# ---------------------------------------------------------------------------------------------------------------
# Fallback without per-image records


def test_files_without_per_image_records_fall_back_to_seeds_and_say_so(tmp_path, capsys):
    """B's files predate per-image records: its entry gets the seeds-only interval, marked ‡, with a note. By hand:
    50.0, 54.0 and 52.0 -> sample std 2.0 -> 52.0 +- 1.96 * 2.0 / sqrt(3) = [49.74, 54.26]."""
    root = tmp_path / "out"
    for seed, extra in ((1, 0), (2, 8), (3, 4)):
        rt.write_bits_run(root, "fewshot", "train", "D", "A", seed, flags(200, (0, 150 + extra)))
        path = rt.write_bits_run(root, "fewshot", "train", "D", "B", seed, flags(200, (0, 100 + extra)))
        data = json.loads((path / "results.json").read_text())
        del data["per_image"]
        (path / "results.json").write_text(json.dumps(data))
    text = compare(root, "--protocol", "fewshot", "--format", "csv")
    rows = {row[1]: row[2] for row in csv_rows(text)}
    assert rows["B"] == "52.00 [49.7, 54.3]‡" and "‡" not in rows["A"]
    assert "‡: no per-image records in these results, so the interval is over seeds only" in text
    runs = load_results(root).runs
    b = iv.records_of([r for r in runs if r.trainer == "B"], "clean")
    got = iv.mean_interval(b)
    assert (got.method, got.seeds) == (iv.SEEDS, 3) and "no per-image record" in got.note
    assert got.low == pytest.approx(52.0 - 1.959964 * 2.0 / math.sqrt(3), abs=1e-4)
    a = iv.records_of([r for r in runs if r.trainer == "A"], "clean")
    assert iv.paired_diff_interval(a, b).method == iv.SEEDS  # a comparison is as good as its weaker side
    assert iv.mean_interval(b[:1]).method == iv.NONE  # one seed and no per-image record: no interval


def test_per_image_record_that_disagrees_with_its_counts_is_not_used(tmp_path):
    path = rt.write_bits_run(tmp_path, "fewshot", "train", "D", "A", 1, flags(100, (0, 40)))
    data = json.loads((path / "results.json").read_text())
    data["clean"]["correct"] = 41
    (path / "results.json").write_text(json.dumps(data))
    report = load_results(tmp_path)
    assert report.runs[0].per_image is None
    assert any("per-image record unusable (clean has 40 correct images but the file records 41)" in w
               for w in report.warnings)


# ---------------------------------------------------------------------------------------------------------------
# Best marks and the pairwise view


def best_tree(root, a_ranges):
    """Two methods, one seed, 400 images: B right on images 0..227 (57.0 %), A on ``a_ranges``."""
    rt.write_bits_run(root, "fewshot", "train", "D", "A", 1, flags(400, *a_ranges))
    rt.write_bits_run(root, "fewshot", "train", "D", "B", 1, flags(400, (0, 228)))
    return compare(root, "--protocol", "fewshot", "--format", "csv")


def csv_rows(text):
    return [row for row in csv.reader(io.StringIO(text)) if row and row[0] == "D"]


def test_best_mark_only_when_the_paired_difference_excludes_zero(tmp_path):
    # A right on B's images and 12 more: +3.0 points; only those 12 images vary, 12 +- 1.96 sqrt(12 * 0.97) images
    # -> about [1.3, 4.7] points
    lead = best_tree(tmp_path / "lead", [(0, 240)])
    rows = {row[1]: row[2] for row in csv_rows(lead)}
    assert rows["A"].endswith("*") and not rows["B"].endswith("*")
    # ... although the two entries' own intervals overlap: only the paired comparison sees the difference
    a_low = float(rows["A"].split("[")[1].split(",")[0])
    b_high = float(rows["B"].split(", ")[1].split("]")[0])
    assert a_low < b_high, rows
    # A wins 10 images and loses 8: +0.5 points, sqrt(18) = 4.2 images of noise -> the interval includes 0: no mark
    close = best_tree(tmp_path / "close", [(0, 220), (300, 310)])
    rows = {row[1]: row[2] for row in csv_rows(close)}
    assert rows["A"].startswith("57.50 [") and rows["B"].startswith("57.00 [")  # A ahead, but not distinguishably
    assert not any(row[2].endswith("*") for row in csv_rows(close))
    assert "No best mark in 1 dataset/column pair(s): the runner-up is within noise of the best" in close


def pairwise_tree(root):
    """ZeroshotCLIP, CoOp and CAPT on two datasets (base and new), seeds 1-2, 200 images per test set."""
    gen = random.Random(2)
    runs = {}
    for d in ("D1", "D2"):
        for phase in ("test_base", "test_new"):
            hard = [gen.random() for _ in range(200)]
            for method, skill in (("ZeroshotCLIP", 0.5), ("CoOp", 0.6), ("CAPT", 0.58)):
                for seed in (1, 2):
                    fl = [h < skill + 0.03 * seed or gen.random() < 0.05 for h in hard]
                    worst = [f and gen.random() < 0.5 for f in fl]
                    rt.write_bits_run(root, "base2new", phase, d, method, seed, fl, worst)
                    runs[(d, phase, method, seed)] = (fl, worst)
    return runs


def test_pairwise_view_is_each_method_minus_the_reference(tmp_path, capsys):
    root = tmp_path / "out"
    pairwise_tree(root)
    data = json.loads(compare(root, "--pairwise", "ZeroshotCLIP", "--format", "json", "--bootstrap", "500"))
    clean, robust = data["tables"]
    assert clean["title"].endswith("clean accuracy, difference to ZeroshotCLIP (points)") and clean["difference"]
    assert clean["rows"] == ["CAPT", "CoOp"] and robust["metric"] == "robust"
    report = load_results(root)

    def recs(method, d, phase, metric="clean"):
        return iv.records_of([r for r in report.runs if (r.trainer, r.dataset, r.phase) == (method, d, phase)], metric)

    cells = {(c["row"], c["block"], c["column"]): c for c in clean["cells"]}
    for method in ("CAPT", "CoOp"):
        want = iv.paired_diff_interval(recs(method, "D1", "test_base"), recs("ZeroshotCLIP", "D1", "test_base"),
                                       draws=500)
        got = cells[(method, "D1", "Base")]
        assert (got["mean"], got["low"], got["high"]) == (want.estimate, want.low, want.high)
        hm = iv.hm_diff_interval(recs(method, "D2", "test_base"), recs(method, "D2", "test_new"),
                                 recs("ZeroshotCLIP", "D2", "test_base"), recs("ZeroshotCLIP", "D2", "test_new"),
                                 draws=500)
        assert cells[(method, "D2", "HM")]["low"] == hm.low and cells[(method, "D2", "HM")]["high"] == hm.high
        avg = iv.average_diff_interval([recs(method, d, "test_new") for d in ("D1", "D2")],
                                       [recs("ZeroshotCLIP", d, "test_new") for d in ("D1", "D2")], draws=500)
        assert cells[(method, "Average", "New")]["mean"] == pytest.approx(avg.estimate)
        assert (cells[(method, "Average", "New")]["low"], cells[(method, "Average", "New")]["high"]) == (avg.low, avg.high)
    # the difference itself, by hand: CoOp minus zero-shot on D1 base, means over the two seeds
    runs = pairwise_tree(tmp_path / "again")
    coop = sum(sum(runs[("D1", "test_base", "CoOp", s)][0]) for s in (1, 2)) / 400 * 100
    zs = sum(sum(runs[("D1", "test_base", "ZeroshotCLIP", s)][0]) for s in (1, 2)) / 400 * 100
    assert cells[("CoOp", "D1", "Base")]["mean"] == pytest.approx(coop - zs)
    text = compare(root, "--pairwise", "ZeroshotCLIP", "--bootstrap", "500", "--protocol", "base2new")
    assert text == compare(root, "--pairwise", "ZeroshotCLIP", "--bootstrap", "500")  # seeded: reproducible
    assert f"{coop - zs:+.2f} [" in text
    assert compare_main([str(root), "--pairwise", "Nobody"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --pairwise Nobody: no such method in the tables; choose one of CAPT, CoOp, ZeroshotCLIP")
    assert compare_main([str(root), "--bootstrap", "10"]) == 2
    assert "at least 100 draws" in capsys.readouterr().err
