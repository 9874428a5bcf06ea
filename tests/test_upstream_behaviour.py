"""Baselines behave as their authors' code where that is the method's definition (docs/METHODS.md, one line each):
APT's attack prompts (constant, perturbed), CoOp's CSC with CTX_INIT, MaPLe's N_CTX > 4 init, AdvMaPLe's coupling
key, and the eps-4 recipes' training attacks."""

import glob
import os

import pytest
import torch
import torch.nn.functional as F

from promptengine.attacks import train_spec
from promptengine.config.merge import build_cfg
from promptengine.registry import TRAINER_REGISTRY, registered_methods
from tests.conftest import ROOT, TOY_OPTS


def make_trainer(tmp_path, name, *opts):
    cfg = build_cfg(opts=[*TOY_OPTS, "TRAINER.NAME", name, "OUTPUT_DIR", str(tmp_path), "SEED", "1", *opts])
    return TRAINER_REGISTRY.get(name)(cfg)


APT_OPTS = ["TRAINER.COOP.N_CTX", "4", "ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.EPS", "8.0",
            "ATTACK.TRAIN.ALPHA", "2.0", "ATTACK.TRAIN.STEPS", "1"]


def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(4, 3, 32, 32, generator=g), torch.tensor([0, 1, 2, 3])


def test_apt_constant_draws_fresh_random_starts_per_image_and_epoch(tmp_path):
    """APT draws a new uniform start every batch; 'constant' used to reuse one seeded start for every batch."""
    tr = make_trainer(tmp_path, "APT", *APT_OPTS, "TRAINER.APT.ATTACK_PROMPT", "constant")
    x, y = batch()
    bundle = tr.model.prompts()

    def adv(epoch, ids):
        tr.epoch, tr.batch_index = epoch, torch.tensor(ids)
        return tr.attack_examples(x, y, bundle, None)

    first = adv(0, [0, 1, 2, 3])
    assert torch.equal(first, adv(0, [0, 1, 2, 3]))  # reproducible
    assert not torch.allclose(first, adv(1, [0, 1, 2, 3]))  # a new epoch: new starts
    assert not torch.allclose(first, adv(0, [4, 5, 6, 7]))  # other images: other starts


def test_apt_constant_prompt_is_apts_template_without_period(tmp_path):
    from promptengine.clip.openai_clip import clip

    tr = make_trainer(tmp_path, "APT", *APT_OPTS, "TRAINER.APT.ATTACK_PROMPT", "constant")
    clip_model = tr.backbone.clip
    with torch.no_grad():
        tokens = clip.tokenize([f"a photo of a {c.replace('_', ' ')}" for c in tr.classnames])
        expected = F.normalize(clip_model.encode_text(tokens), dim=-1)
    assert torch.allclose(tr.constant_target.text_features, expected, atol=1e-5)


def reference_perturbed(tr, x, y, steps, eps, alpha, prompt_alpha):
    """APT's 'perturbed' attack from its description (zero start): each step moves the image by alpha * sign of
    the CE input gradient (projected to the eps ball and [0, 1]) and the context by prompt_alpha * CE gradient."""
    model = tr.model
    ctx = model.prompt_learner.ctx.detach().clone()
    delta = torch.zeros_like(x)
    for _ in range(steps):
        z = (x + delta).clamp(0, 1).requires_grad_(True)
        c = ctx.clone().requires_grad_(True)
        bundle = model.prompts().detached()
        bundle.text_ctx = c
        logits = model.logits_from_features(model.image_features(z, bundle), model.text_features(bundle))
        gz, gc = torch.autograd.grad(F.cross_entropy(logits, y), (z, c))
        delta = (delta + alpha * gz.sign()).clamp(-eps, eps)
        delta = (x + delta).clamp(0, 1) - x
        ctx = (c + prompt_alpha * gc).detach()
    return (x + delta).clamp(0, 1)


def test_apt_perturbed_matches_its_definition_and_leaves_prompts_alone(tmp_path):
    opts = [*APT_OPTS, "ATTACK.TRAIN.STEPS", "3", "ATTACK.TRAIN.RANDOM_START", "False",
            "TRAINER.APT.ATTACK_PROMPT", "perturbed", "TRAINER.APT.PROMPT_ALPHA", "5.0"]
    tr = make_trainer(tmp_path, "APT", *opts)
    tr.model.eval()
    x, y = batch()
    before = tr.model.prompt_learner.ctx.detach().clone()
    ours = tr.attack_examples(x, y, tr.model.prompts(), None)
    assert torch.equal(tr.model.prompt_learner.ctx, before)
    ref = reference_perturbed(tr, x, y, 3, 8 / 255, 2 / 255, 5.0)
    assert torch.allclose(ours, ref, atol=1e-6)
    onfly = reference_perturbed(tr, x, y, 3, 8 / 255, 2 / 255, 0.0)
    assert not torch.allclose(ours, onfly, atol=1e-6)  # the prompt steps change the attack


def test_coop_csc_with_ctx_init_builds_one_shared_context_from_the_words(tmp_path, capsys):
    from promptengine.clip.openai_clip import clip

    tr = make_trainer(tmp_path, "CoOp", "TRAINER.COOP.CSC", "True", "TRAINER.COOP.CTX_INIT", "a photo of a")
    ctx = tr.model.prompt_learner.ctx
    words = tr.backbone.clip.token_embedding(clip.tokenize(["a photo of a"]))[0, 1:5]
    assert ctx.shape == words.shape and torch.allclose(ctx, words)
    assert "CSC True is ignored" in capsys.readouterr().out
    csc = make_trainer(tmp_path / "b", "CoOp", "TRAINER.COOP.CSC", "True", "TRAINER.COOP.N_CTX", "4")
    assert csc.model.prompt_learner.ctx.shape[0] == len(csc.classnames)  # without init words: class-specific


@pytest.mark.parametrize("name,node,key", [("MaPLe", "MAPLE", "N_CTX"), ("IVLP", "IVLP", "N_CTX_TEXT"),
                                          ("FAP", "FAP", "N_CTX")])
def test_more_than_four_context_tokens_ignore_ctx_init(tmp_path, name, node, key):
    extra = ["ATTACK.TRAIN.ENABLED", "True"] if name == "FAP" else []
    depth = ["TRAINER.IVLP.PROMPT_DEPTH_TEXT", "2", "TRAINER.IVLP.PROMPT_DEPTH_VISION", "2"] if name == "IVLP" else [
        f"TRAINER.{node}.PROMPT_DEPTH", "2"]
    opts = [f"TRAINER.{node}.{key}", "6", *depth, *extra]
    tr = make_trainer(tmp_path, name, *opts)
    assert tr.model.prompt_learner.class_prompts.prefix_text == "X X X X X X"
    assert tr.model.prompt_learner.ctx.std() < 0.05  # random N(0, 0.02) init, not word embeddings
    four = make_trainer(tmp_path / "b", name, *opts[:1], "4", *opts[2:])
    assert four.model.prompt_learner.class_prompts.prefix_text == "a photo of a"


def test_advmaple_coupling_key(tmp_path):
    common = ["TRAINER.ADVMAPLE.PROMPT_DEPTH", "2", "ATTACK.TRAIN.ENABLED", "True"]
    assert make_trainer(tmp_path, "AdvMaPLe", *common).model.spec.coupling == "text_to_vision"
    fap_code = make_trainer(tmp_path / "b", "AdvMaPLe", *common, "TRAINER.ADVMAPLE.COUPLING", "vision_to_text")
    assert fap_code.model.spec.coupling == "vision_to_text"


def test_advvp_defaults_follow_the_authors_code(tmp_path):
    tr = make_trainer(tmp_path, "AdvVP", "ATTACK.TRAIN.ENABLED", "True")
    assert tr.model.spec.pixel_space == "normalized"
    assert tr.model.prompt_learner.pixel_prompt.std() > 0.5  # N(0, 1), as the authors' PadPrompter
    small = make_trainer(tmp_path / "b", "AdvVP", "ATTACK.TRAIN.ENABLED", "True", "TRAINER.ADVVP.INIT", "small",
                         "TRAINER.ADVVP.PAD_SPACE", "pixel")
    assert small.model.spec.pixel_space == "pixel" and small.model.prompt_learner.pixel_prompt.abs().max() == 0


TOWER_METHODS = {m.trainer for m in registered_methods() if m.tunes_tower}  # TeCoA, FARE, ...: their papers' attacks
FAP_EPS4 = [p for p in sorted(glob.glob(os.path.join(ROOT, "configs/trainers/*/*_eps4.yaml")))
            if "_apt_" not in p and os.path.basename(os.path.dirname(p)) not in TOWER_METHODS]


@pytest.mark.parametrize("path", FAP_EPS4)
def test_eps4_recipes_train_with_fap_attack(path):
    assert len(FAP_EPS4) == 24  # with the MaPLe-style AdvMaPLe recipes (`*_maple_eps4`)
    spec = train_spec(build_cfg(config_file=path))
    assert spec.eps == pytest.approx(4 / 255) and spec.alpha == pytest.approx(spec.eps) and spec.steps == 2


def test_apt_style_capt_config_ships_with_apts_attack():
    cfg = build_cfg(config_file=os.path.join(ROOT, "configs/trainers/CAPT/vit_b32_ep20_apt_eps4.yaml"))
    spec = train_spec(cfg)
    assert spec.eps == pytest.approx(4 / 255) and spec.alpha == pytest.approx(2 / 3 * 4 / 255, rel=1e-4)
    assert spec.steps == 3 and spec.loss == "ce" and cfg.OPTIM.MAX_EPOCH == 20
