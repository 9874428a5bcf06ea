"""Migration: YAMLs and script options written in each upstream style (CoOp, MaPLe/IVLP/VPT, APT, FAP) load unchanged
through ``train.py --print-config`` and build through ``--no-train`` on a tiny backbone; every printed value checked."""

import os

import pytest
import yaml

from promptengine.config.merge import build_cfg
from promptengine.errors import UserError
from tests.conftest import TOY_OPTS, run_train

# the tiny backbone and toy data of TOY_OPTS, without its OPTIM values (the YAMLs' own are checked; nothing trains)
TINY = [v for k, val in zip(TOY_OPTS[0::2], TOY_OPTS[1::2]) if not k.startswith("OPTIM.") for v in (k, val)]
CLIP_INPUT = {"SIZE": "(224, 224)", "INTERPOLATION": "bicubic", "PIXEL_MEAN": [0.48145466, 0.4578275, 0.40821073],
              "PIXEL_STD": [0.26862954, 0.26130258, 0.27577711], "TRANSFORMS": []}
FAP_PGD = {"EPS": 1, "ALPHA": 1, "TRAIN_ITER": 2, "TEST_ITER": 100, "ADV_TERM": "ce", "LAMBDA_1": 1.0}
FAP_SCRIPT = ["ATTACK.PGD.ADV_TERM", "cos", "ATTACK.PGD.TRAIN_ITER", "2", "ATTACK.PGD.TEST_ITER", "100",
              "ATTACK.PGD.EPS", "1", "ATTACK.PGD.LAMBDA_1", "1.5", "ATTACK.PGD.ALPHA", "1"]
SGD = {"NAME": "sgd", "LR": 0.0035, "MAX_EPOCH": 5, "LR_SCHEDULER": "cosine", "WARMUP_EPOCH": 1,
       "WARMUP_TYPE": "constant", "WARMUP_CONS_LR": "1e-5"}

# name -> (trainer YAML in the upstream repo's style, --trainer as its scripts pass it, extra flags, trailing opts,
#          expected printed values)
CORPUS = {
    "fap": (
        {"INPUT": CLIP_INPUT, "OPTIM": SGD, "MODEL": {"BACKBONE": {"NAME": "ViT-B/32"}},
         "TRAINER": {"FAP": {"N_CTX": 2, "CTX_INIT": "a photo of a", "PREC": "fp16", "PROMPT_DEPTH": 2}},
         "ATTACK": {"PGD": FAP_PGD}},
        "FAP", [], FAP_SCRIPT,
        {"TRAINER.NAME": "FAP", "ATTACK.PGD.EPS": 1.0, "ATTACK.PGD.ALPHA": 1.0, "ATTACK.PGD.LAMBDA_1": 1.5,
         "ATTACK.PGD.ADV_TERM": "cos", "ATTACK.PGD.USE": True, "TRAINER.FAP.PROMPT_DEPTH": 2, "OPTIM.LR": 0.0035,
         "OPTIM.WARMUP_CONS_LR": 1e-5},
    ),
    "fap_zsrobust": (
        {"INPUT": CLIP_INPUT, "OPTIM": {"NAME": "sgd", "LR": 40, "MAX_EPOCH": 10, "LR_SCHEDULER": "cosine"},
         "TRAINER": {"ZSROBUST": {"PREC": "fp16", "VISUAL_PROMPT_METHOD": "padding", "PROMPT_SIZE": 30,
                                  "ADD_PROMPT_SIZE": 5}},
         "ATTACK": {"PGD": {"EPS": 1, "ALPHA": 1, "TRAIN_ITER": 2, "TEST_ITER": 100}}},
        "zsrobust", [], ["ATTACK.PGD.EPS", "1", "ATTACK.PGD.ALPHA", "1"],
        {"TRAINER.NAME": "AdvVP", "TRAINER.ADVVP.PROMPT_SIZE": 30, "TRAINER.ADVVP.ADD_PROMPT_SIZE": 5,
         "TRAINER.ADVVP.VISUAL_PROMPT_METHOD": "padding", "OPTIM.LR": 40.0, "ATTACK.PGD.EPS": 1.0,
         "ATTACK.PGD.TRAIN_ITER": 2},
    ),
    "fap_advivlp": (
        {"INPUT": CLIP_INPUT, "OPTIM": SGD,
         "TRAINER": {"IVLP": {"N_CTX_VISION": 2, "N_CTX_TEXT": 2, "CTX_INIT": "a photo of a", "PREC": "fp16",
                              "PROMPT_DEPTH_VISION": 2, "PROMPT_DEPTH_TEXT": 2}},
         "ATTACK": {"PGD": FAP_PGD}},
        "advivlp", [], ["TRAINER.ADVIVLP.N_CTX_TEXT", "3", *FAP_SCRIPT[:2]],
        {"TRAINER.NAME": "AdvVLP", "TRAINER.IVLP.N_CTX_TEXT": 3, "TRAINER.IVLP.N_CTX_VISION": 2,
         "ATTACK.PGD.ADV_TERM": "cos"},
    ),
    "fap_advmaple": (
        {"INPUT": CLIP_INPUT, "OPTIM": SGD,
         "TRAINER": {"ADVMAPLE": {"N_CTX": 2, "CTX_INIT": "a photo of a", "PREC": "fp16", "PROMPT_DEPTH": 2}},
         "ATTACK": {"PGD": FAP_PGD}},
        "advMaPLe", [], [],
        {"TRAINER.NAME": "AdvMaPLe", "TRAINER.ADVMAPLE.PROMPT_DEPTH": 2, "ATTACK.PGD.ALPHA": 1.0,
         "TRAINER.ADVMAPLE.COUPLING": "text_to_vision"},
    ),
    "fap_adv_zeroshot": (
        {"INPUT": CLIP_INPUT, "ATTACK": {"PGD": {"EPS": 1, "ALPHA": 1, "TEST_ITER": 100}}},
        "AdvZeroshotCLIP", [], [],
        {"TRAINER.NAME": "ZeroshotCLIP", "ATTACK.PGD.EPS": 1.0, "ATTACK.PGD.TEST_ITER": 100},
    ),
    "apt": (  # APT's vit_b32_st.yaml style (ROBUST false) and APT.sh's flags
        {"INPUT": dict(CLIP_INPUT, TRANSFORMS=["random_resized_crop", "random_flip", "normalize"]),
         "OPTIM": dict(SGD, LR=0.002, MAX_EPOCH=20), "MODEL": {"BACKBONE": {"NAME": "ViT-B/32", "ROBUST": False}}},
        "APT", ["--eps", "4", "--alpha", "2.67", "--steps", "3", "--adv-prompt", "perturbed", "--prompt-alpha", "0.1"],
        ["TRAINER.COOP.N_CTX", "4", "TRAINER.COOP.CSC", "False", "TRAINER.COOP.CLASS_TOKEN_POSITION", "end",
         "DATASET.NUM_SHOTS", "2"],
        {"TRAINER.NAME": "APT", "ATTACK.TRAIN.ENABLED": True, "ATTACK.TRAIN.EPS": 4.0, "ATTACK.TRAIN.ALPHA": 2.67,
         "ATTACK.TRAIN.STEPS": 3, "TRAINER.APT.ATTACK_PROMPT": "perturbed", "TRAINER.APT.PROMPT_ALPHA": 0.1,
         "MODEL.BACKBONE.ROBUST": False, "TRAINER.COOP.N_CTX": 4, "DATASET.NUM_SHOTS": 2},
    ),
    "apt_defaults": (  # one flag given: APT's defaults for the others (alpha 2/3, not scaled with eps)
        {"MODEL": {"BACKBONE": {"ROBUST": False}}}, "APT", ["--eps", "2"], ["TRAINER.COOP.N_CTX", "4"],
        {"ATTACK.TRAIN.EPS": 2.0, "ATTACK.TRAIN.ALPHA": pytest.approx(2 / 3), "ATTACK.TRAIN.STEPS": 3,
         "TRAINER.APT.ATTACK_PROMPT": "onfly", "ATTACK.TRAIN.ENABLED": True},
    ),
    "maple": (
        {"INPUT": CLIP_INPUT, "OPTIM": SGD, "DATASET": {"NUM_SHOTS": 16},
         "TRAINER": {"MAPLE": {"N_CTX": 2, "CTX_INIT": "a photo of a", "PREC": "fp16", "PROMPT_DEPTH": 2}}},
        "MaPLe", [], ["DATASET.SUBSAMPLE_CLASSES", "base"],
        {"TRAINER.NAME": "MaPLe", "TRAINER.MAPLE.N_CTX": 2, "DATASET.SUBSAMPLE_CLASSES": "base"},
    ),
    "ivlp": (
        {"INPUT": CLIP_INPUT, "OPTIM": SGD,
         "TRAINER": {"IVLP": {"N_CTX_VISION": 2, "N_CTX_TEXT": 2, "CTX_INIT": "a photo of a", "PREC": "fp16",
                              "PROMPT_DEPTH_VISION": 3, "PROMPT_DEPTH_TEXT": 3}}},
        "IVLP", [], [], {"TRAINER.NAME": "IVLP", "TRAINER.IVLP.PROMPT_DEPTH_TEXT": 3},
    ),
    "vpt": (
        {"INPUT": CLIP_INPUT, "OPTIM": SGD,
         "TRAINER": {"VPT": {"N_CTX_VISION": 4, "CTX_INIT": "a photo of a", "PREC": "fp16", "PROMPT_DEPTH_VISION": 1}}},
        "VPT", [], [], {"TRAINER.NAME": "VPT", "TRAINER.VPT.N_CTX_VISION": 4},
    ),
    "coop": (
        {"INPUT": dict(CLIP_INPUT, TRANSFORMS=["random_resized_crop", "random_flip", "normalize"]),
         "OPTIM": dict(SGD, LR=0.002, MAX_EPOCH=200)},
        "CoOp", [], ["TRAINER.COOP.N_CTX", "16", "TRAINER.COOP.CSC", "True", "TRAINER.COOP.CTX_INIT", "a_photo_of_a"],
        {"TRAINER.NAME": "CoOp", "TRAINER.COOP.CSC": True, "TRAINER.COOP.CTX_INIT": "a_photo_of_a",
         "OPTIM.MAX_EPOCH": 200},
    ),
}


def lookup(tree: dict, key: str):
    for part in key.split("."):
        tree = tree[part]
    return tree


def args_for(tmp_path, name):
    data, trainer, flags, opts, _ = CORPUS[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    # TINY first (tiny backbone, toy data), then the upstream script's own trailing options
    return ["--trainer", trainer, "--config-file", str(path), "--seed", "1", *flags, *TINY, *opts]


@pytest.mark.parametrize("name", list(CORPUS))
def test_upstream_style_loads_prints_and_builds(tmp_path, capsys, name):
    expected = CORPUS[name][-1]
    args = args_for(tmp_path, name)
    assert run_train(["--print-config", *args]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    for key, value in expected.items():
        got = lookup(printed, key)
        assert got == value, (key, got)
        if isinstance(value, (bool, int, float, str)):
            assert type(got) is type(value), (key, got)  # 1 -> 1.0 where the key is a float
    out = tmp_path / "run"
    assert run_train(["--no-train", "--output-dir", out, *args]) == 0, capsys.readouterr().err
    written = yaml.safe_load((out / "config.yaml").read_text())
    for key, value in expected.items():
        assert lookup(written, key) == value, key


def test_translations_print_one_note_each_on_stderr(tmp_path, capsys):
    assert run_train(["--print-config", *args_for(tmp_path, "fap_zsrobust")]) == 0
    err = capsys.readouterr().err
    assert "Note: TRAINER.ZSROBUST in" in err and "read as TRAINER.ADVVP" in err
    assert "Note: trainer 'zsrobust' (FAP's name) runs as 'AdvVP'" in err
    assert run_train(["--print-config", *args_for(tmp_path, "apt")]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "APT's flags" in line]
    assert len(notes) == 1 and "ATTACK.TRAIN.EPS 4.0" in notes[0] and "TRAINER.APT.PROMPT_ALPHA 0.1" in notes[0]


def test_apt_flags_honour_apts_robust_default(tmp_path, capsys, monkeypatch, tiny_clip_file):
    """APT's train.py loads backbone/<arch>_eps<E>.pth.tar unless its YAML says ROBUST false."""
    import torch

    from promptengine.clip.loading import load_clip

    monkeypatch.chdir(tmp_path)
    cfg_file = tmp_path / "apt.yaml"
    cfg_file.write_text(yaml.safe_dump({"OPTIM": {"LR": 0.002}}))
    args = ["--trainer", "APT", "--config-file", str(cfg_file), "--eps", "4", *TOY_OPTS, "TRAINER.COOP.N_CTX", "4"]
    assert run_train(["--print-config", *args]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["MODEL"]["BACKBONE"]["ROBUST"] is True
    assert run_train(["--no-train", "--output-dir", tmp_path / "a", *args]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("Note: ")]
    assert len(err) == 1 and err[0].startswith("error: MODEL.BACKBONE.ROBUST True (APT's default)")
    err = err[0]
    assert os.path.join("backbone", "rn50_eps4.pth.tar") in err  # APT's naming: vitb32 for ViT-B/32, else rn50
    os.makedirs("backbone")
    torch.save({"vision_encoder_state_dict": load_clip(tiny_clip_file).visual.state_dict()},
               os.path.join("backbone", "rn50_eps4.pth.tar"))
    assert run_train(["--no-train", "--output-dir", tmp_path / "b", *args]) == 0
    assert "Loading robust vision weights from backbone/rn50_eps4.pth.tar" in (tmp_path / "b" / "log.txt").read_text()
    coop = ["--trainer", "CoOp", *args[2:], "OPTIM.MAX_EPOCH", "1"]  # APT's CoOp.sh: same flags, clean training
    assert run_train(["--output-dir", tmp_path / "c", *coop]) == 0
    log = (tmp_path / "c" / "log.txt").read_text()
    assert "Loading robust vision weights from backbone/rn50_eps4.pth.tar" in log and "adv_acc" not in log


def test_int_values_for_float_keys_in_files_and_opts(tmp_path):
    path = tmp_path / "ints.yaml"
    path.write_text(yaml.safe_dump({"ATTACK": {"PGD": {"EPS": 4}, "TRAIN": {"ALPHA": 1}}, "OPTIM": {"LR": 2}}))
    cfg = build_cfg(config_file=str(path), opts=["ATTACK.TEST.EPS", "8", "OPTIM.MAX_EPOCH", "3"])
    assert (cfg.ATTACK.PGD.EPS, cfg.ATTACK.TRAIN.ALPHA, cfg.OPTIM.LR, cfg.ATTACK.TEST.EPS) == (4.0, 1.0, 2.0, 8.0)
    assert all(type(v) is float for v in (cfg.ATTACK.PGD.EPS, cfg.ATTACK.TRAIN.ALPHA, cfg.OPTIM.LR, cfg.ATTACK.TEST.EPS))
    assert type(cfg.OPTIM.MAX_EPOCH) is int  # int keys stay int
    with pytest.raises(UserError, match="wrong value type"):
        build_cfg(opts=["OPTIM.MAX_EPOCH", "3.5"])  # a float for an int key is still an error


def test_print_config_validates_trainer_and_dataset(tmp_path, capsys):
    assert run_train(["--print-config", "--trainer", "ADVVLP"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown trainer 'ADVVLP'; did you mean 'AdvVLP'?") and "\n" not in err
    assert run_train(["--print-config", "--trainer", "CoOp", "DATASET.NAME", "OxfordPet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown dataset 'OxfordPet'; did you mean 'OxfordPets'?")
    assert capsys.readouterr().out == ""


def test_pixel_mean_other_than_clips_is_one_line_error(tmp_path, capsys):
    with pytest.raises(UserError, match=r"INPUT.PIXEL_MEAN \[0.485, 0.456, 0.406\] differs from CLIP's") as exc:
        build_cfg(opts=["INPUT.PIXEL_MEAN", "[0.485, 0.456, 0.406]"])
    assert "\n" not in str(exc.value)
    with pytest.raises(UserError, match="INPUT.PIXEL_STD"):
        build_cfg(opts=["INPUT.PIXEL_STD", "[0.5, 0.5, 0.5]"])
    assert build_cfg(opts=["INPUT.PIXEL_MEAN", "[0.48145466, 0.4578275, 0.40821073]"]).INPUT.PIXEL_MEAN[0] == 0.48145466


def test_a_trainers_own_upstream_declarations_drive_the_loader(tmp_path, monkeypatch, capsys):
    """Upstream names, nodes and unread keys are declared by the trainer that owns them and read through the
    registry: a method added in a test gets its upstream YAML and options translated with no list edited."""
    from yacs.config import CfgNode as CN

    from promptengine.prompting import PromptTrainer
    from promptengine.registry import TRAINER_REGISTRY

    class Legacy(PromptTrainer):
        upstream_names, upstream_nodes = ("oldlegacy",), {"OLDNODE": "LEGACY"}
        upstream_unused = ("TRAINER.LEGACY.GONE",)

        @staticmethod
        def extend_cfg(cfg):
            cfg.TRAINER.LEGACY = CN()
            cfg.TRAINER.LEGACY.DEPTH = 1

    monkeypatch.setitem(TRAINER_REGISTRY._items, "Legacy", Legacy)
    path = tmp_path / "legacy.yaml"
    path.write_text(yaml.safe_dump({"TRAINER": {"OLDNODE": {"DEPTH": 3, "GONE": True}}}))
    cfg = build_cfg(config_file=str(path), opts=["TRAINER.NAME", "OldLegacy"])
    assert (cfg.TRAINER.NAME, cfg.TRAINER.LEGACY.DEPTH, "GONE" in cfg.TRAINER.LEGACY) == ("Legacy", 3, False)
    cfg = build_cfg(opts=["TRAINER.OLDNODE.DEPTH", "4", "TRAINER.LEGACY.GONE", "True"])
    assert cfg.TRAINER.LEGACY.DEPTH == 4
    assert "Note: TRAINER.LEGACY.GONE in the command line is an upstream key" in capsys.readouterr().err


def test_fap_classifier_key_is_accepted_and_ignored(tmp_path, capsys):
    """FAP's unread CLASSIFIER key (in its extend_cfg, and in config.yaml files written before it was dropped here)
    still loads, with one note, and is not in the config."""
    path = tmp_path / "old_config.yaml"
    path.write_text(yaml.safe_dump({"TRAINER": {"FAP": {"CLASSIFIER": False}, "ADVMAPLE": {"CLASSIFIER": False}}}))
    cfg = build_cfg(config_file=str(path))
    assert "CLASSIFIER" not in cfg.TRAINER.FAP and "CLASSIFIER" not in cfg.TRAINER.ADVMAPLE
    err = capsys.readouterr().err
    assert "Note: TRAINER.FAP.CLASSIFIER in" in err and "Note: TRAINER.ADVMAPLE.CLASSIFIER in" in err


def test_integers_in_float_lists_become_floats_once(tmp_path):
    """One coercion (merge.coerce) for YAML values and options alike: ints inside a list of floats become floats."""
    path = tmp_path / "scale.yaml"
    path.write_text(yaml.safe_dump({"INPUT": {"RRCROP_SCALE": [0.5, 1]}}))
    for cfg in (build_cfg(config_file=str(path)), build_cfg(opts=["INPUT.RRCROP_SCALE", "(0.5, 1)"])):
        assert cfg.INPUT.RRCROP_SCALE == (0.5, 1.0) and all(type(v) is float for v in cfg.INPUT.RRCROP_SCALE)
