"""Per-image records in results.json: written by every test evaluation, in dataset order, consistent with the counts
next to them, and read back by the interval tools (docs/EXPERIMENTS.md)."""

import json

from promptengine.evaluation.perimage import PerImage, flags_of, pack_bits, parse_record, unpack_bits
from promptengine.reporting.intervals import load_record, mean_interval
from tests.conftest import TOY_OPTS, run_train

ZS_OPTS = [*TOY_OPTS, "ATTACK.TEST.ENABLED", "True", "ATTACK.TEST.STEPS", "2", "ATTACK.TEST.EPS", "8.0"]


def zeroshot(out, *opts):
    assert run_train(["--trainer", "ZeroshotCLIP", "--eval-only", "--seed", "1", "--output-dir", out, *ZS_OPTS,
                      *opts]) == 0
    data = json.loads((out / "results.json").read_text())
    record, why = parse_record(data)
    assert why is None and isinstance(record, PerImage)
    return data, record


def test_bits_round_trip_little_endian():
    flags = [True, False, False, True, True] + [False] * 6 + [True]  # 12 images: 2 bytes
    text = pack_bits(flags)
    assert unpack_bits(text, 12) == 0b100000011001  # bit i = image i
    assert flags_of(unpack_bits(text, 12), 12) == flags
    assert len(pack_bits([True] * 2400)) == 400  # 300 bytes of base64 for 2,400 images


def test_evaluation_writes_per_image_record_in_dataset_order(tmp_path):
    full, record = zeroshot(tmp_path / "full", "TEST.MAX_IMAGES", "30")
    block = full["per_image"]
    assert record.n == full["num_images"] == 30
    assert record.items == full["identity"]["identity"]["data"]["test_items"]  # pairing only on the same images
    assert record.clean.bit_count() == full["clean"]["correct"]
    assert record.robust[0].bit_count() == full["robust"][0]["correct"]
    assert record.worst_case == record.clean & record.robust[0]  # worst case = clean-correct AND robust
    assert len(block["clean"]) == 8 and full["format"] == 1  # 30 bits -> 4 bytes of base64; format unchanged
    # the first 12 images evaluated alone, in batches of 5 instead of 20: the same bits for the same images
    part, head = zeroshot(tmp_path / "head", "TEST.MAX_IMAGES", "12", "DATALOADER.TEST.BATCH_SIZE", "5")
    mask = (1 << 12) - 1
    assert head.clean == record.clean & mask and head.worst_case == record.worst_case & mask
    assert head.items != record.items  # another item list: never paired with the 30-image run
    loaded = load_record(tmp_path / "full", "robust")
    assert (loaded.bits, loaded.n, loaded.accuracy) == (record.worst_case, 30, full["worst_case"]["accuracy"])
    assert mean_interval([loaded], draws=200).method == "bootstrap"
