"""The defense study's reading of results (promptengine/lab/defenses.py), on hand-made results.json files."""

from __future__ import annotations

import json
from pathlib import Path

from promptengine.evaluation.perimage import ENCODING, pack_bits
from promptengine.lab import defenses as D

N = 40


def _block(flags):
    return {"accuracy": 100.0 * sum(flags) / len(flags), "correct": sum(flags), "total": len(flags)}


def _write(folder: Path, seed: int, clean, plain, adaptive=None):
    """One results.json: attack 0 is the non-adaptive PGD, attack 1 (if given) the attack through the defense."""
    folder.mkdir(parents=True)
    attacks = [dict(_block(plain), name="pgd10", attack={"method": "pgd"}, attack_model="the undefended model")]
    vectors = [plain]
    if adaptive is not None:
        attacks.append(dict(_block(adaptive), name="adaptive, pgd10", attack={"method": "pgd", "through": "defense"},
                            attack_model="the defense, unrolled"))
        vectors.append(adaptive)
    worst = [all(v[i] for v in vectors) for i in range(len(clean))]
    data = {"format": 1, "seed": seed, "split": "test", "num_images": len(clean), "clean": _block(clean),
            "robust": attacks, "worst_case": _block(worst),
            "per_image": {"items": "40:abc", "n": len(clean), "encoding": ENCODING, "clean": pack_bits(clean),
                          "robust": [pack_bits(v) for v in vectors], "worst_case": pack_bits(worst)}}
    (folder / "results.json").write_text(json.dumps(data))


def flags(k):
    return [True] * k + [False] * (N - k)


def _protocol_dir(root, part, trainer, seed):
    return root / "base2new" / f"test_{part}" / D.DATASET / "shots_16" / trainer / "synth@abc" / f"seed{seed}"


def test_a_defense_whose_adaptive_attack_is_far_lower_is_flagged_and_one_that_holds_is_not(tmp_path):
    for seed in (1, 2, 3):
        for part in D.PARTS:
            _write(_protocol_dir(tmp_path, part, "ZeroshotCLIP", seed), seed, flags(30), flags(4))
            # TTC: non-adaptive 20 of 40, through the defense 2 of 40 -> masking
            _write(_protocol_dir(tmp_path, part, "TTC", seed), seed, flags(26), flags(20), flags(2))
            # R-TPT here: the adaptive attack is as strong as the non-adaptive one -> no flag
            _write(_protocol_dir(tmp_path, part, "RTPT", seed), seed, flags(28), flags(10), flags(10))
            # TAPT here: 8 images lost on one seed only -> -6.7 on average, but seeds disagree: no flag
            _write(_protocol_dir(tmp_path, part, "TAPT", seed), seed, flags(28), flags(20),
                   flags(12 if seed == 1 else 20))
    lines, notes = D.analyse(tmp_path, draws=300)
    by = {(ln.label, ln.part): ln for ln in lines}
    ttc, rtpt = by["TTC on zero-shot", "base"], by["R-TPT on zero-shot", "base"]
    assert ttc.flagged and not rtpt.flagged
    assert (ttc.non_adaptive.estimate, ttc.worst_adaptive.estimate, ttc.gap.estimate) == (50.0, 5.0, -45.0)
    assert ttc.clean_cost.estimate == -10.0 and ttc.versus_undefended.estimate == -5.0  # paired with zero-shot
    assert rtpt.gap.estimate == 0.0 and rtpt.gap.low == 0.0  # the same images: a difference without noise
    assert ttc.seeds == 3 and ttc.images == N
    assert by["zero-shot, undefended", "new"].worst_adaptive is None  # an undefended model has no adaptive attack
    tapt = by["TAPT on AdvVLP prompts", "base"]
    assert tapt.gap.estimate < -D.GAP and tapt.gap.high >= 0 and not tapt.flagged  # an estimate alone flags nothing
    # the undefended AdvVLP evaluations are missing: said, not judged, and nothing is paired with them
    assert any(n.startswith("AdvVLP prompts, undefended, base: not judged") for n in notes)
    assert tapt.clean_cost is None
    table = D.render_table(lines)
    assert table.count("MASKING") == 2 and "3 seeds x 40 test images per part" in table


def test_the_worst_adaptive_case_is_per_image_over_every_adaptive_attack(tmp_path):
    folder = tmp_path / "r"
    _write(folder, 1, flags(40), flags(30), flags(20))
    data = json.loads((folder / "results.json").read_text())
    # a second adaptive attack (EOT) that misses other images than the first
    eot = [i >= 10 for i in range(N)]
    data["robust"].append(dict(_block(eot), name="adaptive, eot4", attack={"through": "defense"}))
    data["per_image"]["robust"].append(pack_bits(eot))
    (folder / "results.json").write_text(json.dumps(data))
    ev = D.load_evaluation([folder / "results.json"])
    assert ev.worst_adaptive[0].accuracy == 25.0  # images 10..19 survive both adaptive attacks
    assert sorted(ev.adaptive) == ["adaptive, eot4", "adaptive, pgd10"]


def test_the_tapt_prompts_are_evaluated_from_the_tapt_training_run(tmp_path):
    train = tmp_path / "base2new" / "train_base" / D.DATASET / "shots_16" / "TAPT" / "synth@abc" / "seed2"
    train.mkdir(parents=True)
    cmd = D.eval_only_command("python", Path("/repo"), tmp_path, "TTC", "new", 2, 16, ["TEST.MAX_IMAGES", "64"])
    assert cmd[cmd.index("--model-dir") + 1] == str(train) and "--eval-only" in cmd
    assert "--skip-done" in cmd  # a finished evaluation is reused only by train.py's identity check
    assert cmd[cmd.index("TEST.DEFENSE") + 1] == "TTC" and cmd[cmd.index("DATASET.SUBSAMPLE_CLASSES") + 1] == "new"
    assert cmd[-2:] == ["TEST.MAX_IMAGES", "64"]
