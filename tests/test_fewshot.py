"""Few-shot selection (Dassl-identical), base/new subsampling, and the JSON few-shot cache."""

import json
import math
import random

import pytest

from promptengine.config.merge import build_cfg
from promptengine.data.datum import Datum
from promptengine.data.fewshot import fewshot_with_cache, generate_fewshot_dataset, prepare_splits, subsample_classes
from promptengine.errors import UserError


def items(n_classes=5, per_class=7, shuffle_seed=0):
    data = [Datum(f"img/{c}/{i}.jpg", label=c, classname=f"class{c}") for c in range(n_classes) for i in range(per_class)]
    random.Random(shuffle_seed).shuffle(data)  # labels appear in a mixed order, as in real splits
    return data


# Selections made by Dassl's own ``DatasetBase.generate_fewshot_dataset`` (KaiyangZhou/Dassl.pytorch @ c61a1b5, the
# file loaded unchanged and run once by hand) after ``random.seed(seed)`` on ``items()`` (train) then
# ``items(shuffle_seed=1)`` (val), 4 shots; items are written "class/index" for img/<class>/<index>.jpg.
DASSL_4SHOT = {
    0: ("1/5 1/1 1/2 1/0 0/1 0/4 0/3 0/6 3/3 3/1 3/2 3/5 2/4 2/3 2/2 2/1 4/5 4/6 4/4 4/2",
        "4/6 4/0 4/2 4/1 3/2 3/1 3/6 3/3 0/0 0/3 0/2 0/1 2/6 2/4 2/0 2/3 1/5 1/6 1/0 1/2"),
    1: ("1/3 1/4 1/0 1/6 0/0 0/3 0/6 0/4 3/5 3/2 3/0 3/6 2/5 2/6 2/2 2/4 4/0 4/4 4/1 4/5",
        "4/0 4/1 4/6 4/5 3/2 3/1 3/6 3/4 0/6 0/3 0/2 0/0 2/1 2/3 2/6 2/5 1/5 1/4 1/6 1/1"),
    2: ("1/5 1/0 1/2 1/4 0/1 0/5 0/2 0/4 3/4 3/0 3/3 3/6 2/4 2/1 2/3 2/5 4/3 4/1 4/0 4/5",
        "4/6 4/3 4/2 4/4 3/1 3/3 3/2 3/0 0/1 0/0 0/6 0/5 2/0 2/3 2/1 2/2 1/3 1/4 1/2 1/0"),
}
# the same, random.seed(5), items(per_class=3), 5 shots with repeat=True (random.choices for short classes)
DASSL_REPEAT = "0/2 0/0 0/0 0/0 0/0 3/2 3/1 3/0 3/2 3/0 1/1 1/2 1/0 1/2 1/0 2/2 2/1 2/1 2/1 2/0 4/1 4/2 4/1 4/2 4/0"


def short(data):
    return " ".join(d.impath[len("img/"):-len(".jpg")] for d in data)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fewshot_matches_dassl_selection(seed):
    random.seed(seed)
    got_train = generate_fewshot_dataset(items(), num_shots=4)
    got_val = generate_fewshot_dataset(items(shuffle_seed=1), num_shots=4)
    assert (short(got_train), short(got_val)) == DASSL_4SHOT[seed]
    random.seed(seed)  # both sources in one call consume the RNG in the same order
    assert tuple(map(short, generate_fewshot_dataset(items(), items(shuffle_seed=1), num_shots=4))) == DASSL_4SHOT[seed]


def test_fewshot_repeat_matches_dassl_selection():
    random.seed(5)
    assert short(generate_fewshot_dataset(items(per_class=3), num_shots=5, repeat=True)) == DASSL_REPEAT


def test_fewshot_counts_and_short_classes():
    data = items(per_class=3)
    random.seed(0)
    assert len(generate_fewshot_dataset(data, num_shots=2)) == 5 * 2
    assert len(generate_fewshot_dataset(data, num_shots=10)) == 5 * 3  # fewer available: all are taken
    assert len(generate_fewshot_dataset(data, num_shots=10, repeat=True)) == 5 * 10
    assert generate_fewshot_dataset(data, num_shots=-1) is data


@pytest.mark.parametrize("n", [4, 5, 48])
def test_base_new_relabelling(n):
    data = [Datum(f"{c}.jpg", label=c, classname=f"c{c}") for c in reversed(range(n))]
    (base,) = subsample_classes(data, subsample="base")
    (new,) = subsample_classes(data, subsample="new")
    m = math.ceil(n / 2)
    assert sorted({d.label for d in base}) == list(range(m))
    assert sorted({d.label for d in new}) == list(range(n - m))
    assert {d.classname for d in base} == {f"c{c}" for c in range(m)}
    assert {d.classname for d in new} == {f"c{c}" for c in range(m, n)}
    assert all(d.classname == f"c{d.label + m}" for d in new)
    with pytest.raises(UserError, match="all/base/new"):
        subsample_classes(data, subsample="novel")


def test_cache_stores_relative_paths_and_reloads(tmp_path):
    base = str(tmp_path / "data" / "pets")
    train = [Datum(f"{base}/images/{c}_{i}.jpg", label=c, classname=str(c)) for c in range(3) for i in range(6)]
    val = [Datum(f"{base}/images/v{c}_{i}.jpg", label=c, classname=str(c)) for c in range(3) for i in range(6)]
    random.seed(1)
    t1, v1 = fewshot_with_cache("Pets", base, train, val, 4, 1, str(tmp_path / "cache"))
    path = tmp_path / "cache" / "Pets" / "shot_4-seed_1.json"
    record = json.loads(path.read_text())
    assert all(not p.startswith("/") for p, _ in record["train"]) and len(record["val"]) == 3 * 4
    random.seed(99)  # a different RNG state: the cached selection must come back unchanged
    t2, v2 = fewshot_with_cache("Pets", base, train, val, 4, 1, str(tmp_path / "cache"))
    assert t1 == t2 and v1 == v2
    changed = train[:-1]  # a different split makes the cache stale: regenerated, not silently reused
    t3, _ = fewshot_with_cache("Pets", base, changed, val, 4, 1, str(tmp_path / "cache"))
    assert all(d in changed for d in t3)


def test_prepare_splits_fewshot_then_subsample(tmp_path):
    cfg = build_cfg(opts=["DATASET.NUM_SHOTS", "2", "SEED", "3", "DATASET.SUBSAMPLE_CLASSES", "new",
                          "DATASET.FEWSHOT_CACHE_DIR", str(tmp_path)])
    train, val, test = prepare_splits(cfg, "X", "", items(), items(shuffle_seed=2), items(shuffle_seed=3))
    assert len(train) == 2 * 2 and len(val) == 2 * 2 and len(test) == 2 * 7  # new = classes 3, 4
    assert {d.classname for d in test} == {"class3", "class4"}


def test_negative_seed_bypasses_the_cache(tmp_path):
    train, val = items(per_class=20), items(per_class=20, shuffle_seed=1)
    random.seed(1)
    first, _ = fewshot_with_cache("X", "", train, val, 4, -1, str(tmp_path))
    second, _ = fewshot_with_cache("X", "", train, val, 4, -1, str(tmp_path))
    assert first != second  # each unseeded run draws its own subset (the first draw is not reused)
    assert not any(tmp_path.rglob("*.json"))  # and nothing is cached under the shared "seed_-1" key
