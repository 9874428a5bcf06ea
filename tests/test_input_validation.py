"""Bad input, part two: config values by declared domain, config files, images and split files, each through the
real train.py (or the tool concerned): exit 2, one ``error:`` line naming the problem and the fix, no output."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
from PIL import Image

from promptengine.data.images import read_rgb
from promptengine.errors import UserError
from tests.conftest import ROOT, TOY_OPTS, run_train
from tests.dataset_trees import make_tree
from tests.test_datasets_benchmarks import _check_tool
from tests.test_reliability import BASE, bad

ATTACK_ON = ["ATTACK.TEST.ENABLED", "True", "ATTACK.TEST.STEPS", "5"]
# value, then fragments the one error line must contain (key, value, domain, source)
CONFIG_CASES = {
    "batch size 0": (["DATALOADER.TRAIN_X.BATCH_SIZE", "0"], "DATALOADER.TRAIN_X.BATCH_SIZE = 0", ">= 1",
                     "command line"),
    "max epoch 0": (["OPTIM.MAX_EPOCH", "0"], "OPTIM.MAX_EPOCH = 0", "integer >= 1"),
    "negative lr": (["OPTIM.LR", "-0.01"], "OPTIM.LR = -0.01", "> 0"),
    "lr 0": (["OPTIM.LR", "0"], "OPTIM.LR = 0.0", "> 0", "would train nothing"),
    "num shots -5": (["DATASET.NUM_SHOTS", "-5"], "DATASET.NUM_SHOTS = -5", ">= 1, or -1", "all images"),
    "num shots 0": (["DATASET.NUM_SHOTS", "0"], "DATASET.NUM_SHOTS = 0", ">= 1, or -1"),
    "test alpha 0": ([*ATTACK_ON, "ATTACK.TEST.ALPHA", "0"], "ATTACK.TEST.ALPHA = 0", "clean accuracy"),
    "fap test alpha 0": (["ATTACK.PGD.ALPHA", "0", "ATTACK.PGD.TEST_ITER", "3"], "ATTACK.PGD.ALPHA = 0",
                         "robust accuracy"),
    "test max images 0": (["TEST.MAX_IMAGES", "0"], "TEST.MAX_IMAGES = 0", "-1 = all"),
    "nan lr": (["OPTIM.LR", "float('nan')"], "OPTIM.LR"),
    "none lr": (["OPTIM.LR", "None"], "OPTIM.LR = None"),
    "bad input size": (["INPUT.SIZE", "(0,32)"], "INPUT.SIZE", "each an integer >= 1"),
    "trainer key choice": (["TRAINER.CAPT.ALPHA_MODE", "'auto'"], "TRAINER.CAPT.ALPHA_MODE = 'auto'", "'confidence'"),
    "trainer key range": (["TRAINER.COOP.N_CTX", "-2"], "TRAINER.COOP.N_CTX = -2", ">= 0"),
    "negative workers": (["DATALOADER.NUM_WORKERS", "-1"], "DATALOADER.NUM_WORKERS = -1"),
    "section as value": (["OPTIM", "3"], "OPTIM on the command line is a section"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_config_value_outside_domain(case, tmp_path, capsys):
    opts, *expected = CONFIG_CASES[case]
    bad(tmp_path, capsys, [*BASE, "--output-dir", str(tmp_path / "o"), *TOY_OPTS, *opts], *expected)
    assert not (tmp_path / "o").exists()


def write(path, text):
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def test_domain_error_names_the_file_it_came_from(tmp_path, capsys):
    cfg = write(tmp_path / "trainer.yaml", "OPTIM:\n  NAME: sgd\n  LR: -0.5\n")
    bad(tmp_path, capsys, [*BASE, "--output-dir", str(tmp_path / "o"), "--config-file", cfg],
        "OPTIM.LR = -0.5", f"from {cfg}")
    # the command line overrides the file, and then the command line is named
    bad(tmp_path, capsys, [*BASE, "--output-dir", str(tmp_path / "o"), "--config-file", cfg, "OPTIM.LR", "-1.0"],
        "OPTIM.LR = -1.0", "from the command line")


def test_integers_are_accepted_for_floats(tmp_path, capsys):
    cfg = write(tmp_path / "fap.yaml", "ATTACK:\n  PGD:\n    EPS: 1\n    ALPHA: 1\nOPTIM:\n  LR: 1\n")
    assert run_train(["--print-config", "--config-file", cfg, "ATTACK.TEST.EPS", "4"]) == 0
    out = capsys.readouterr().out
    assert "LR: 1.0" in out and "EPS: 4.0" in out and "EPS: 1.0" in out


def test_attack_names_are_case_insensitive_as_the_attack_core_reads_them(capsys):
    assert run_train(["--print-config", "ATTACK.TEST.METHOD", "PGD", "ATTACK.TEST.NORM", "Linf", "ATTACK.TEST.LOSS",
                      "CE"]) == 0


@pytest.mark.parametrize("opts, key", [(["ATTACK.TEST.ENABLED", "True", "ATTACK.TEST.EPS", "100"], "ATTACK.TEST.EPS"),
                                       ([*ATTACK_ON, "ATTACK.TEST.EPS", "0.0"], "ATTACK.TEST.EPS = 0"),
                                       (["ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.ALPHA", "0"], "ATTACK.TRAIN.ALPHA")])
def test_suspicious_values_warn_on_one_line(opts, key, capsys):
    assert run_train(["--print-config", "--trainer", "CoOp", *opts]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ") and key in err[0], err


YAML_CASES = {
    "not utf-8": (b"OPTIM:\n  NAME: sgd\n  LR: 0.1 # caf\xe9\n", "not UTF-8", "line 3, column 16", "save it as UTF-8"),
    "syntax error": ("OPTIM:\n  LR: [0.1, 0.2\nSEED: 1\n", "not valid YAML at line", "column"),
    "bad indentation": ("OPTIM:\n  LR: 0.1\n   NAME: sgd\n", "line 3, column"),
    "a list": ("- OPTIM\n- LR\n", "holds a list, not a mapping"),
    "value for a section": ("OPTIM: 3\n", "OPTIM in", "is a section of keys"),
    "wrong type": ("OPTIM:\n  MAX_EPOCH: ten\n", "wrong value type for OPTIM.MAX_EPOCH", "expected an int"),
}


@pytest.mark.parametrize("case", list(YAML_CASES))
def test_broken_config_file(case, tmp_path, capsys):
    text, *expected = YAML_CASES[case]
    path = write(tmp_path / "cfg.yaml", text)
    bad(tmp_path, capsys, [*BASE, "--output-dir", str(tmp_path / "o"), "--config-file", path], path, *expected)
    assert not (tmp_path / "o").exists()


def test_broken_config_file_subprocess_has_no_traceback(tmp_path):
    path = write(tmp_path / "cfg.yaml", b"OPTIM:\n  NAME: \xff\xfe\n")
    res = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--config-file", path, "--print-config"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"error: config file {path} is not UTF-8 text (byte 0xff at line 2, "
                                               "column 9); save it as UTF-8"]


# ---------------------------------------------------------------------------------------------- images
def save(arr_or_img, path, mode=None, **kw):
    img = arr_or_img if isinstance(arr_or_img, Image.Image) else Image.fromarray(arr_or_img, mode)
    img.save(path, **kw)
    return str(path)


def test_16_bit_png_is_scaled_by_its_range(tmp_path):
    ramp = np.tile(np.linspace(1000, 5000, 16).astype(np.uint16), (4, 1))  # (4, 16) 16-bit, a dark 12-bit range
    path = save(Image.fromarray(ramp), tmp_path / "a.png")
    assert Image.open(path).mode.startswith("I")
    out = np.asarray(read_rgb(path))
    assert out.shape == (4, 16, 3) and out.dtype == np.uint8
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255  # not a white image
    assert np.all(np.diff(out[0, :, 0].astype(int)) > 0)


def test_float_and_int32_tiff_are_scaled_by_their_range(tmp_path):
    f = np.linspace(-2.0, 6.0, 12, dtype=np.float32).reshape(3, 4)
    f[0, 0] = np.nan
    out = np.asarray(read_rgb(save(Image.fromarray(f, "F"), tmp_path / "f.tif")))
    assert out.shape == (3, 4, 3) and out.max() == 255 and out[0, 1, 0] < 30
    i32 = (np.arange(12, dtype=np.int32).reshape(3, 4) * 100000)
    out = np.asarray(read_rgb(save(Image.fromarray(i32, "I"), tmp_path / "i.tif")))
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255


def test_alpha_palette_cmyk_and_bilevel_modes(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red; the rest fully transparent black
    out = np.asarray(read_rgb(save(rgba, tmp_path / "a.png", "RGBA")))
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[1, 1]) == (255, 255, 255)
    la = Image.fromarray(np.array([[[10, 0], [10, 255]]], np.uint8), "LA")
    out = np.asarray(read_rgb(save(la, tmp_path / "la.png")))
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[0, 1]) == (10, 10, 10)
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putpixel((1, 0), 1)
    out = np.asarray(read_rgb(save(pal, tmp_path / "p.png", transparency=0)))
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[0, 1]) == (0, 255, 0)
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # red in CMYK
    assert tuple(np.asarray(read_rgb(save(cmyk, tmp_path / "c.jpg", quality=100)))[0, 0]) > (200, 0, 0)
    one = Image.new("1", (3, 3), 1)
    assert np.asarray(read_rgb(save(one, tmp_path / "b.png"))).min() == 255
    gray = Image.new("L", (3, 3), 77)
    assert tuple(np.asarray(read_rgb(save(gray, tmp_path / "g.png")))[1, 1]) == (77, 77, 77)


def jpeg_bytes():
    import io

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_truncated_jpeg_and_decompression_bomb(tmp_path, monkeypatch):
    path = tmp_path / "t.jpg"
    path.write_bytes(jpeg_bytes()[:600])
    with pytest.raises(UserError, match=r"cannot read image .*t\.jpg: (?i:.*truncated).*replace it") as exc:
        read_rgb(str(path))
    assert "check_datasets.py --check-images" in str(exc.value)
    path.write_bytes(jpeg_bytes())
    for limit in (1000, 3000):  # 64x64 = 4096 pixels: above 2x the limit PIL refuses, above 1x it only warns
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        with pytest.raises(UserError, match=r"t\.jpg is too large to decode safely.*MAX_IMAGE_PIXELS"):
            read_rgb(str(path))


def pets(tmp_path):
    make_tree(tmp_path / "data", "oxford_pets")
    config = os.path.join(ROOT, "configs/datasets/oxford_pets.yaml")
    return ["--root", str(tmp_path / "data"), "--dataset-config-file", config]


PETS_OPTS = ["MODEL.BACKBONE.NAME", "tiny-p8-32", "DATALOADER.NUM_WORKERS", "0", "INPUT.SIZE", "(32,32)",
             "TRAINER.COOP.N_CTX", "2", "OPTIM.MAX_EPOCH", "1", "DATALOADER.TRAIN_X.BATCH_SIZE", "2"]


def test_truncated_jpeg_in_a_run_is_one_line(tmp_path, capsys):
    data = pets(tmp_path)
    victim = sorted((tmp_path / "data").rglob("*.jpg"))[3]
    victim.write_bytes(victim.read_bytes()[:40])
    bad(tmp_path, capsys, [*BASE, "--output-dir", str(tmp_path / "o"), *data, *PETS_OPTS, "DATALOADER.NUM_WORKERS", "1"],
        "cannot read image", victim.name, "replace it")
    assert not (tmp_path / "o" / "results.json").exists()


def test_16_bit_image_through_the_dataset_loader(tmp_path):
    """A 16-bit PNG in a real dataset tree reaches the model as a graded image, not a white one."""
    from promptengine.config.merge import build_cfg
    from promptengine.data.manager import DataManager

    make_tree(tmp_path / "data", "oxford_pets")
    cfg = build_cfg(opts=["DATASET.ROOT", str(tmp_path / "data"), "DATASET.NAME", "OxfordPets", "INPUT.SIZE", "(8,8)",
                          "DATALOADER.NUM_WORKERS", "0", "DATASET.FEWSHOT_CACHE_DIR", str(tmp_path / "cache")])
    dm = DataManager(cfg)
    item = dm.test_set[0]
    ramp = np.tile(np.linspace(0, 4095, 8).astype(np.uint16), (8, 1))  # 12-bit data in a 16-bit PNG
    Image.fromarray(ramp).save(item["impath"], format="PNG")  # the loader sniffs the format, not the suffix
    img = dm.test_set[0]["img"]  # (3, 8, 8) in [0, 1]
    assert img.min().item() == 0.0 and img.max().item() == 1.0 and 0.3 < img.mean().item() < 0.7


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_bad_rerun_leaves_an_earlier_run_unchanged(tmp_path, capsys):
    data = pets(tmp_path)
    out = tmp_path / "o"
    assert run_train([*BASE, "--no-train", "--output-dir", str(out), *data, *PETS_OPTS]) == 0
    before = snapshot(out)
    capsys.readouterr()
    bad(tmp_path, capsys, [*BASE, "--output-dir", str(out), *data, *PETS_OPTS, "OPTIM.MAX_EPOCH", "0"], "MAX_EPOCH")
    edit_split(tmp_path, lambda s: s.update(test=[]))
    bad(tmp_path, capsys, [*BASE, "--output-dir", str(out), *data, *PETS_OPTS], "'test' split is empty")
    assert snapshot(out) == before


def test_check_images_lists_bad_files(tmp_path, capsys):
    make_tree(tmp_path / "data", "oxford_pets")
    images = sorted((tmp_path / "data").rglob("*.jpg"))
    images[0].write_bytes(b"not an image")
    images[5].write_bytes(images[5].read_bytes()[:30])
    tool = _check_tool()
    assert tool.main(["--root", str(tmp_path / "data"), "oxford_pets"]) == 0  # without the flag nothing is decoded
    capsys.readouterr()
    assert tool.main(["--root", str(tmp_path / "data"), "--check-images", "oxford_pets"]) == 1
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if "bad image:" in ln]
    assert len(lines) == 2 and images[0].name in lines[0] + lines[1] and images[5].name in lines[0] + lines[1]
    assert "oxford_pets broken: 2 images cannot be read" in out


# ---------------------------------------------------------------------------------------------- split files
def edit_split(tmp_path, change):
    path = tmp_path / "data" / "oxford_pets" / "split_zhou_OxfordPets.json"
    split = json.loads(path.read_text())
    change(split)
    path.write_text(json.dumps(split))
    return str(path)


def _set(split, key, i, pos, value):
    split[key][i][pos] = value


SPLIT_CASES = {
    "label outside 0..K-1": (lambda s: _set(s, "test", 1, 1, 9), "label 9 (test entry 1)", "labels must be exactly 0..4"),
    "negative label": (lambda s: _set(s, "train", 0, 1, -1), "label -1"),
    "empty test": (lambda s: s.update(test=[]), "the 'test' split is empty", "not a result"),
    "empty train": (lambda s: s.update(train=[]), "the 'train' split is empty"),
    "path escapes the folder": (lambda s: _set(s, "test", 0, 0, "../../../etc/hostname"),
                                "test entry 0: path '../../../etc/hostname' points outside the dataset folder"),
    "absolute path": (lambda s: _set(s, "val", 0, 0, "/etc/hostname"), "points outside the dataset folder"),
    "empty class name": (lambda s: _set(s, "train", 2, 2, "  "), "train entry 2", "empty class name"),
    "two names for one label": (lambda s: _set(s, "val", 0, 2, "wolf"), "two class names", "'wolf'"),
    "class name not text": (lambda s: _set(s, "test", 0, 2, "\udc80"), "not valid text"),
    "class name not a string": (lambda s: _set(s, "test", 0, 2, None), "test entry 0 has the class name None"),
    "fractional label": (lambda s: _set(s, "train", 1, 1, 1.5), "train entry 1 has the label 1.5"),
    "infinite label": (lambda s: _set(s, "train", 1, 1, float("inf")), "train entry 1 has the label inf"),
}


@pytest.mark.parametrize("case", list(SPLIT_CASES))
def test_broken_split_file(case, tmp_path, capsys):
    data = pets(tmp_path)
    change, *expected = SPLIT_CASES[case]
    path = edit_split(tmp_path, change)
    bad(tmp_path, capsys, [*BASE, "--output-dir", str(tmp_path / "o"), *data, *PETS_OPTS], path, *expected)
    assert not (tmp_path / "o").exists()


def test_duplicate_split_entries_warn(tmp_path, capsys):
    data = pets(tmp_path)
    edit_split(tmp_path, lambda s: s["train"].append(s["train"][0]))
    assert run_train([*BASE, "--no-train", "--output-dir", str(tmp_path / "o"), *data, *PETS_OPTS]) == 0
    log = (tmp_path / "o" / "log.txt").read_text()
    assert "1 images are listed more than once in 'train'" in log


def test_results_with_zero_images_are_refused(tmp_path):
    from promptengine.engine.trainer import TrainerX

    me = types.SimpleNamespace(cfg=None, output_dir=str(tmp_path))
    with pytest.raises(UserError, match="test set has no images"):
        TrainerX.write_results(me, "test", {"total": 0, "accuracy": 0.0}, [], None)
    assert not (tmp_path / "results.json").exists()
