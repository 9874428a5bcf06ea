"""Config: merge order, trainer keys, CoOp/MaPLe YAMLs unchanged, errors, --seed 0, --print-config."""

import pytest
import yaml

from promptengine.config.merge import build_cfg
from promptengine.errors import UserError
from tests.conftest import run_train


def write(path, data):
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_merge_order(tmp_path):
    ds = write(tmp_path / "ds.yaml", {"DATASET": {"NAME": "FromDataset", "NUM_SHOTS": 4}, "OPTIM": {"LR": 0.1}})
    tr = write(tmp_path / "tr.yaml", {"OPTIM": {"LR": 0.2, "MAX_EPOCH": 7}, "DATASET": {"NUM_SHOTS": 8}})
    cfg = build_cfg(ds, tr, [("OPTIM.MAX_EPOCH", 9), ("SEED", 0)], ["OPTIM.MAX_EPOCH", "11"])
    assert cfg.DATASET.NAME == "FromDataset"  # only the dataset file sets it
    assert cfg.DATASET.NUM_SHOTS == 8  # trainer file after dataset file
    assert cfg.OPTIM.LR == 0.2
    assert cfg.OPTIM.MAX_EPOCH == 11  # opts after CLI flags after files
    assert cfg.SEED == 0
    assert cfg.is_frozen()
    assert cfg.TRAINER.COOP.N_CTX == 16  # trainer-declared keys exist before the files merge


def test_coop_and_maple_style_yaml_load_unchanged(tmp_path):
    coop = {
        "DATALOADER": {"TRAIN_X": {"BATCH_SIZE": 32}, "TEST": {"BATCH_SIZE": 100}, "NUM_WORKERS": 8},
        "INPUT": {"SIZE": (224, 224), "INTERPOLATION": "bicubic", "PIXEL_MEAN": [0.48145466, 0.4578275, 0.40821073],
                  "PIXEL_STD": [0.26862954, 0.26130258, 0.27577711],
                  "TRANSFORMS": ["random_resized_crop", "random_flip", "normalize"]},
        "OPTIM": {"NAME": "sgd", "LR": 0.002, "MAX_EPOCH": 200, "LR_SCHEDULER": "cosine", "WARMUP_EPOCH": 1,
                  "WARMUP_TYPE": "constant", "WARMUP_CONS_LR": 1e-5},
        "TRAIN": {"PRINT_FREQ": 5},
        "MODEL": {"BACKBONE": {"NAME": "ViT-B/16"}},
    }
    cfg = build_cfg(config_file=write(tmp_path / "coop.yaml", coop))
    assert cfg.OPTIM.MAX_EPOCH == 200 and list(cfg.INPUT.TRANSFORMS) == ["random_resized_crop", "random_flip", "normalize"]
    maple = dict(coop, TRAINER={"MAPLE": {"N_CTX": 2, "CTX_INIT": "a photo of a", "PREC": "fp16", "PROMPT_DEPTH": 9}})
    cfg = build_cfg(config_file=write(tmp_path / "maple.yaml", maple))
    assert cfg.TRAINER.MAPLE.PROMPT_DEPTH == 9


def test_unknown_key_names_closest(tmp_path):
    bad = write(tmp_path / "bad.yaml", {"OPTIM": {"MAX_EPOCHS": 3}})
    with pytest.raises(UserError, match=r"unknown config key 'OPTIM.MAX_EPOCHS'.*did you mean 'OPTIM.MAX_EPOCH'"):
        build_cfg(config_file=bad)
    with pytest.raises(UserError, match=r"'TRAINER.COOP.N_CTXX'.*did you mean 'TRAINER.COOP.N_CTX'"):
        build_cfg(opts=["TRAINER.COOP.N_CTXX", "4"])


def test_wrong_value_type_is_one_line(tmp_path):
    with pytest.raises(UserError, match="wrong value type") as exc:
        build_cfg(opts=["OPTIM.MAX_EPOCH", "'ten'"])
    assert "\n" not in str(exc.value)


def test_print_config_honours_seed_zero_and_builds_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    assert run_train(["--print-config", "--seed", "0", "--trainer", "CoOp", "--output-dir", out]) == 0
    text = capsys.readouterr().out
    assert "SEED: 0" in text and "NAME: CoOp" in text
    assert not out.exists()


def test_unknown_trainer_did_you_mean(tmp_path, capsys):
    assert run_train(["--trainer", "Coop", "--output-dir", tmp_path / "o"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown trainer 'Coop'; did you mean 'CoOp'?") and "\n" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("key,value", [("TRAINER.APT.ATTACK_PROMPT", "'sideways'"), ("TRAINER.TECOA.TUNE", "'text'"),
                                       ("TRAINER.ADVVP.VISUAL_PROMPT_METHOD", "'random'"),
                                       ("TRAINER.ADVVP.INIT", "'zeros'"), ("TRAINER.FAP.ADV_TERM", "'l2'"),
                                       ("TRAINER.CAPT.N_CTX", "0")])
def test_method_keys_are_checked_by_their_declared_domains(key, value):
    """The methods' own keys are checked once, by the domains their trainers declare: one line naming the key, the
    value, the allowed values and where the value came from."""
    escaped = key.replace(".", r"\.")
    with pytest.raises(UserError, match=rf"^{escaped} = .* \(from the command line\) is not allowed: it must be "):
        build_cfg(opts=[key, value])


def test_a_reports_rebuilt_config_gets_the_same_domain_check(tmp_path):
    """A report rebuilds the model from the run's config.yaml and its --opts: the values pass the domain check
    training's config passed, before anything is built."""
    from promptengine.robustness.target import load_run

    (tmp_path / "config.yaml").write_text(build_cfg(opts=["TRAINER.NAME", "APT"]).dump())
    with pytest.raises(UserError, match=r"^TRAINER\.APT\.ATTACK_PROMPT = 'sideways' \(from the command line\) is not "
                                        "allowed"):
        load_run(str(tmp_path), opts=["TRAINER.APT.ATTACK_PROMPT", "'sideways'"])
