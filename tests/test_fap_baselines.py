"""FAP's baselines as FAP ran them: the FAP-paper AdvMaPLe recipes reproduce FAP's released advMaPLe (vision->text
coupling, the dataset's template as prompt prefix and context init), the MaPLe-style AdvMaPLe stays available under
its own recipe names, runs log which coupling and init they use, and the forward passes match an independent
re-derivation of FAP's advMaPLe code.

The reference below is plain torch written from FAP's released ``trainers/advmaple.py`` (``MultiModalPromptLearner``,
``CustomCLIP``) and its MaPLe-style CLIP blocks, as read: the text context is the embedding of the first ``n_ctx``
tokens of the dataset's template; each class prompt is ``template + " " + name + "."`` (the template's "{}" stays in);
the first vision prompts are ``proj(ctx)`` appended after the patch tokens before ``ln_pre``; deep vision prompts are
free parameters that replace the last ``n_ctx`` tokens before blocks 1..J-1; deep text prompts are their per-layer
linear projections (vision width -> text width) and replace the ``n_ctx`` tokens after SOT. It uses CLIP's raw
modules only; nothing of our prompt learner or backbone wrapper.
"""

import glob
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from promptengine.clip.backbone import CLIP_MEAN, CLIP_STD
from promptengine.clip.openai_clip import clip
from promptengine.config.merge import build_cfg
from promptengine.errors import UserError
from promptengine.registry import DATASET_REGISTRY, TRAINER_REGISTRY
from tests.conftest import ROOT, TOY_OPTS, run_train

N_CTX, DEPTH = 2, 3
ADVMAPLE = os.path.join(ROOT, "configs", "trainers", "AdvMaPLe")
FAP_PAPER = sorted(p for p in glob.glob(os.path.join(ADVMAPLE, "vit_b*.yaml")) if "_maple" not in p)


class FapAdvMaPLeReference(nn.Module):
    """FAP's advMaPLe prompt learner and forward, re-derived (CLIP's vision width instead of FAP's literal 768)."""

    def __init__(self, clip_model, classnames, template: str, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        dt, dv = clip_model.ln_final.weight.shape[0], clip_model.visual.conv1.out_channels
        with torch.no_grad():
            init = clip_model.token_embedding(clip.tokenize(template))[0, 1:1 + N_CTX]  # template's first tokens
            self.tokens = torch.cat([clip.tokenize(f"{template} {c.replace('_', ' ')}.") for c in classnames])
            emb = clip_model.token_embedding(self.tokens)
        self.init_ctx = init.clone()
        self.ctx = nn.Parameter(init + 0.05 * torch.randn(init.shape, generator=g))  # as if trained a little
        self.prefix, self.suffix = emb[:, :1], emb[:, 1 + N_CTX:]
        self.proj = self._linear(dt, dv, g)  # text ctx -> first-layer vision prompts
        self.compound_prompts_image = [0.02 * torch.randn(N_CTX, dv, generator=g) for _ in range(DEPTH - 1)]
        self.compound_prompt_projections = [self._linear(dv, dt, g) for _ in range(DEPTH - 1)]  # vision -> text

    @staticmethod
    def _linear(d_in: int, d_out: int, g: torch.Generator) -> nn.Linear:
        layer = nn.Linear(d_in, d_out)
        with torch.no_grad():
            layer.weight.copy_(torch.randn(d_out, d_in, generator=g) / d_in ** 0.5)
            layer.bias.copy_(0.1 * torch.randn(d_out, generator=g))
        return layer

    def our_state(self) -> dict:
        """These tensors under our prompt learner's checkpoint names (a wrong direction cannot load: shapes differ)."""
        state = {"ctx": self.ctx, "proj_shallow.weight": self.proj.weight, "proj_shallow.bias": self.proj.bias}
        for i, (p, lin) in enumerate(zip(self.compound_prompts_image, self.compound_prompt_projections)):
            state.update({f"vision_deep.{i}": p, f"proj_deep.{i}.weight": lin.weight, f"proj_deep.{i}.bias": lin.bias})
        return {k: v.detach() for k, v in state.items()}

    def text_features(self, clip_model) -> torch.Tensor:
        k = self.tokens.shape[0]
        prompts = torch.cat([self.prefix, self.ctx.unsqueeze(0).expand(k, -1, -1), self.suffix], dim=1)
        deep_text = [lin(p) for lin, p in zip(self.compound_prompt_projections, self.compound_prompts_image)]
        x = (prompts + clip_model.positional_embedding).permute(1, 0, 2)  # (77, K, Dt)
        counter = 0
        for i, block in enumerate(clip_model.transformer.resblocks):
            if i > 0 and counter < len(deep_text):  # replace the context tokens after SOT
                x = torch.cat([x[:1], deep_text[counter].unsqueeze(1).expand(-1, k, -1), x[1 + N_CTX:]])
                counter += 1
            x = block(x)
        x = clip_model.ln_final(x.permute(1, 0, 2))
        return x[torch.arange(k), self.tokens.argmax(dim=-1)] @ clip_model.text_projection

    def image_features(self, clip_model, images: torch.Tensor) -> torch.Tensor:
        v, b = clip_model.visual, images.shape[0]
        mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        x = v.conv1((images - mean) / std)  # FAP's clip_img_preprocessing at the model's own resolution
        x = x.reshape(b, x.shape[1], -1).permute(0, 2, 1)
        x = torch.cat([v.class_embedding + torch.zeros(b, 1, x.shape[-1]), x], dim=1) + v.positional_embedding
        x = torch.cat([x, self.proj(self.ctx).expand(b, -1, -1)], dim=1)  # shared ctx appended, then ln_pre
        x = v.ln_pre(x).permute(1, 0, 2)
        counter = 0
        for i, block in enumerate(v.transformer.resblocks):
            if i > 0 and counter < len(self.compound_prompts_image):  # replace the last n_ctx tokens
                p = self.compound_prompts_image[counter].unsqueeze(1).expand(-1, b, -1)
                x = torch.cat([x[:x.shape[0] - N_CTX], p])
                counter += 1
            x = block(x)
        return v.ln_post(x.permute(1, 0, 2)[:, 0, :]) @ v.proj

    def logits(self, clip_model, images: torch.Tensor) -> torch.Tensor:
        img = F.normalize(self.image_features(clip_model, images), dim=-1)
        txt = F.normalize(self.text_features(clip_model), dim=-1)
        return clip_model.logit_scale.exp() * img @ txt.t()


def make_trainer(tmp_path, name, *opts):
    cfg = build_cfg(opts=[*TOY_OPTS, "TRAINER.NAME", name, "OUTPUT_DIR", str(tmp_path), "SEED", "1",
                          "ATTACK.TRAIN.ENABLED", "True", *opts])
    return TRAINER_REGISTRY.get(name)(cfg)


FAP_INIT = {"AdvMaPLe": ["TRAINER.ADVMAPLE.COUPLING", "vision_to_text", "TRAINER.ADVMAPLE.PROMPT_INIT",
                         "dataset_template", "TRAINER.ADVMAPLE.PROMPT_DEPTH", str(DEPTH)],
            "FAP": ["TRAINER.FAP.PROMPT_INIT", "dataset_template", "TRAINER.FAP.PROMPT_DEPTH", str(DEPTH)]}


@pytest.mark.parametrize("template", ["a photo of a {}, a type of pet.", "{} texture."])
@pytest.mark.parametrize("name", ["AdvMaPLe", "FAP"])
def test_forward_matches_faps_advmaple_code(tmp_path, monkeypatch, name, template):
    monkeypatch.setattr(DATASET_REGISTRY.get("ToyColors"), "template", template)
    # tiny-p8-64: vision width 192, text width 128, so the projection direction shows in the shapes too
    tr = make_trainer(tmp_path, name, *FAP_INIT[name], "MODEL.BACKBONE.NAME", "tiny-p8-64", "INPUT.SIZE", "(64,64)")
    clip_model, pl = tr.backbone.clip, tr.model.prompt_learner
    ref = FapAdvMaPLeReference(clip_model, tr.classnames, template, seed=7)
    assert torch.equal(pl.ctx.detach(), ref.init_ctx)  # context initialised from the template's first tokens
    pl.load_state_dict(ref.our_state())  # strict: the same learnable tensors, nothing else
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    tr.model.eval()
    with torch.no_grad():
        assert torch.allclose(tr.model(x), ref.logits(clip_model, x), atol=3e-5)


def test_fap_paper_recipes_reproduce_faps_advmaple_and_the_maple_style_has_its_own_names():
    assert len(FAP_PAPER) == 8  # ViT-B/16 and B/32, 5 and 10 epochs, eps 1 and 4
    for path in FAP_PAPER:
        fap = build_cfg(config_file=path)
        node = fap.TRAINER.ADVMAPLE
        assert (node.COUPLING, node.PROMPT_INIT, node.N_CTX, node.PROMPT_DEPTH) == (
            "vision_to_text", "dataset_template", 2, 9), path
        twin = path.replace("_notransform", "_notransform_maple")
        maple = build_cfg(config_file=twin)
        assert (maple.TRAINER.ADVMAPLE.COUPLING, maple.TRAINER.ADVMAPLE.PROMPT_INIT) == ("text_to_vision", "ctx_init")
        for cfg in (fap, maple):  # everything else is the same setting
            del cfg.TRAINER.ADVMAPLE["COUPLING"], cfg.TRAINER.ADVMAPLE["PROMPT_INIT"]
        assert fap == maple, twin


def test_advvlp_recipes_are_faps_advvlp():
    """FAP's AdvVLP learner reads CTX_INIT (not the template): independent 2+2 tokens, depth 9, "a photo of a"."""
    paths = sorted(glob.glob(os.path.join(ROOT, "configs", "trainers", "AdvVLP", "vit_b*.yaml")))
    assert len(paths) == 8
    for path in paths:
        node = build_cfg(config_file=path).TRAINER.IVLP
        assert (node.CTX_INIT, node.N_CTX_TEXT, node.N_CTX_VISION, node.PROMPT_DEPTH_TEXT,
                node.PROMPT_DEPTH_VISION) == ("a photo of a", 2, 2, 9, 9), path


TINY = [v for k, val in zip(TOY_OPTS[0::2], TOY_OPTS[1::2]) if not k.startswith("OPTIM.") for v in (k, val)]


@pytest.mark.parametrize("recipe,lines", [
    ("vit_b32_ep10_batch4_2ctx_notransform", ["COUPLING vision_to_text", 'PROMPT_INIT dataset_template "a photo of a {}."',
                                              'Initial context: "a photo of a {}."']),
    ("vit_b32_ep10_batch4_2ctx_notransform_maple", ["COUPLING text_to_vision", 'PROMPT_INIT ctx_init "a photo of a"',
                                                    'Initial context: "a photo of a"']),
])
def test_recipe_logs_its_coupling_and_init_at_startup(tmp_path, capsys, recipe, lines):
    out = tmp_path / "run"
    args = ["--no-train", "--trainer", "AdvMaPLe", "--config-file", os.path.join(ADVMAPLE, f"{recipe}.yaml"),
            "--output-dir", out, "--seed", "1", *TINY, "TRAINER.ADVMAPLE.PROMPT_DEPTH", "2"]
    assert run_train(args) == 0, capsys.readouterr().err
    printed, logged = capsys.readouterr().out, (out / "log.txt").read_text()
    for line in lines:
        assert line in printed and line in logged, line


def test_template_init_refuses_a_dataset_without_a_template(tmp_path, monkeypatch):
    monkeypatch.delattr(DATASET_REGISTRY.get("ToyColors"), "template")  # e.g. a Dassl fork's dataset class
    with pytest.raises(UserError, match="PROMPT_INIT ctx_init"):
        make_trainer(tmp_path, "AdvMaPLe", *FAP_INIT["AdvMaPLe"])
