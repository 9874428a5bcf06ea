"""Upstream parity without network: every prompt method's logits against an independent re-derivation of its
authors' forward, and FAP's objective on hand-made numbers.

The reference forward below is written from the papers' equations and the documented token layouts (CoOp's
"SOT [ctx] name . EOT" with class token end/middle/front; CoCoOp's ctx + meta-net(image feature); MaPLe/IVLP/VPT
deep prompts replacing the context slot before each of the first J blocks; MaPLe's text->vision and FAP's
vision->text linear couplings; AdvVP's pad added to the normalised image plus input-layer tokens). It runs CLIP's
raw modules on the full 77-token sequence, with none of the model's own assembly or truncation code; only the
learnable tensors are taken from our prompt learner (they are random).
"""

import math

import pytest
import torch
import torch.nn.functional as F

from promptengine.clip.backbone import CLIP_MEAN, CLIP_STD, PromptableCLIP
from promptengine.clip.loading import random_clip
from promptengine.clip.model import PromptedCLIP
from promptengine.clip.prompt_learner import PromptSpec
from promptengine.methods.objectives import fap_loss

NAMES = ["red circle", "blue square", "green star"]
ATOL = 3e-5


@pytest.fixture(scope="module")
def clip_model():
    return random_clip("tiny-p8-32", seed=5).float().eval()


def ref_text(clip_model, prefix: str, ctx, deep=(), position="end"):
    """Class text features (K, E) for prompts '<prefix> <name>.' with ``ctx`` in the slot after SOT."""
    from promptengine.clip.openai_clip import clip

    tokens = clip.tokenize([f"{prefix} {n}." for n in NAMES])  # (K, 77)
    emb = clip_model.token_embedding(tokens)  # (K, 77, D)
    n = ctx.shape[-2]
    ctx = ctx.expand(len(NAMES), -1, -1) if ctx.dim() == 2 else ctx  # (K, n, D)
    pre, suf = emb[:, :1], emb[:, 1 + n:]
    rows = []
    for k, name in enumerate(NAMES):
        nl = len(clip.tokenize([name])[0].nonzero()) - 2  # name tokens without SOT/EOT
        c, s = ctx[k:k + 1], suf[k:k + 1]
        if position == "end":
            rows.append(torch.cat([pre[k:k + 1], c, s], 1))
        elif position == "front":
            rows.append(torch.cat([pre[k:k + 1], s[:, :nl], c, s[:, nl:]], 1))
        else:
            h = n // 2
            rows.append(torch.cat([pre[k:k + 1], c[:, :h], s[:, :nl], c[:, h:], s[:, nl:]], 1))
    x = (torch.cat(rows) + clip_model.positional_embedding).permute(1, 0, 2)  # (77, K, D)
    for i, block in enumerate(clip_model.transformer.resblocks):
        if 1 <= i <= len(deep):
            p = deep[i - 1].unsqueeze(1).expand(-1, x.shape[1], -1)
            x = torch.cat([x[:1], p, x[1 + p.shape[0]:]])
        x = block(x)
    x = clip_model.ln_final(x.permute(1, 0, 2))
    return x[torch.arange(len(NAMES)), tokens.argmax(-1)] @ clip_model.text_projection


def ref_image(clip_model, images, shallow=None, deep=(), pad=None):
    """Image features (B, E): CLIP normalisation, [+ pad], patches + CLS + pos, [+ prompt tokens], deep replacement."""
    v = clip_model.visual
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    z = (images - mean) / std
    if pad is not None:
        z = z + pad
    x = v.conv1(z).flatten(2).transpose(1, 2)  # (B, g*g, Dv)
    x = torch.cat([v.class_embedding.expand(x.shape[0], 1, -1), x], 1) + v.positional_embedding
    if shallow is not None:
        x = torch.cat([x, shallow.expand(x.shape[0], -1, -1)], 1)
    x = v.ln_pre(x).permute(1, 0, 2)
    for i, block in enumerate(v.transformer.resblocks):
        if 1 <= i <= len(deep):
            p = deep[i - 1].unsqueeze(1).expand(-1, x.shape[1], -1)
            x = torch.cat([x[:-p.shape[0]], p])
        x = block(x)
    return v.ln_post(x[0]) @ v.proj


def ref_logits(clip_model, img, txt):
    img, txt = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
    return clip_model.logit_scale.exp() * (img @ txt.t() if txt.dim() == 2 else torch.einsum("be,bke->bk", img, txt))


def build(clip_model, spec):
    return PromptedCLIP(PromptableCLIP(clip_model), spec, NAMES).eval()


def images():
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("position", ["end", "front", "middle"])
@pytest.mark.parametrize("csc", [False, True])
def test_coop_matches_reference(clip_model, position, csc):
    model = build(clip_model, PromptSpec(text_n_ctx=4, text_csc=csc, class_token_position=position))
    x = images()
    with torch.no_grad():
        ours = model(x)
        ctx = model.prompt_learner.ctx
        ref = ref_logits(clip_model, ref_image(clip_model, x), ref_text(clip_model, "X X X X", ctx, position=position))
    assert torch.allclose(ours, ref, atol=ATOL)


def test_coop_ctx_init_matches_reference(clip_model):
    model = build(clip_model, PromptSpec(text_n_ctx=4, text_ctx_init="a photo of a"))
    x = images()
    with torch.no_grad():
        ctx = model.prompt_learner.ctx
        from promptengine.clip.openai_clip import clip

        words = clip_model.token_embedding(clip.tokenize(["a photo of a"]))[0, 1:5]
        assert torch.allclose(ctx, words)  # initialised from the words
        ref = ref_logits(clip_model, ref_image(clip_model, x), ref_text(clip_model, "a photo of a", ctx))
        assert torch.allclose(model(x), ref, atol=ATOL)


def test_cocoop_matches_reference(clip_model):
    model = build(clip_model, PromptSpec(text_n_ctx=4, conditional=True))
    x = images()
    with torch.no_grad():
        pl = model.prompt_learner
        img = ref_image(clip_model, x)
        shift = pl.meta_net(F.normalize(img, dim=-1))  # (B, D): meta-net of the (normalised) image feature
        txt = torch.stack([ref_text(clip_model, "X X X X", pl.ctx + s) for s in shift])  # (B, K, E)
        assert torch.allclose(model(x), ref_logits(clip_model, img, txt), atol=ATOL)


def test_vpt_deep_matches_reference(clip_model):
    model = build(clip_model, PromptSpec(vision_n_ctx=3, vision_depth=3, template="a photo of a {}."))
    x = images()
    with torch.no_grad():
        pl = model.prompt_learner
        from promptengine.clip.openai_clip import clip

        txt = clip_model.encode_text(clip.tokenize([f"a photo of a {n}." for n in NAMES]))
        img = ref_image(clip_model, x, pl.vision_shallow, list(pl.vision_deep))
        assert torch.allclose(model(x), ref_logits(clip_model, img, txt), atol=ATOL)


def test_ivlp_matches_reference(clip_model):
    spec = PromptSpec(text_n_ctx=2, text_depth=3, text_ctx_init="a photo of a", vision_n_ctx=3, vision_depth=2)
    model = build(clip_model, spec)
    x = images()
    with torch.no_grad():
        pl = model.prompt_learner
        txt = ref_text(clip_model, "a photo of a", pl.ctx, list(pl.text_deep))
        img = ref_image(clip_model, x, pl.vision_shallow, list(pl.vision_deep))
        assert torch.allclose(model(x), ref_logits(clip_model, img, txt), atol=ATOL)


def test_maple_text_to_vision_matches_reference(clip_model):
    spec = PromptSpec(text_n_ctx=2, text_depth=3, text_ctx_init="a photo of a", vision_n_ctx=2, vision_depth=3,
                      coupling="text_to_vision")
    model = build(clip_model, spec)
    x = images()
    with torch.no_grad():
        pl = model.prompt_learner
        txt = ref_text(clip_model, "a photo of a", pl.ctx, list(pl.text_deep))
        vdeep = [proj(p) for proj, p in zip(pl.proj_deep, pl.text_deep)]  # MaPLe: V_i = F_i(T_i)
        img = ref_image(clip_model, x, pl.proj_shallow(pl.ctx), vdeep)
        assert torch.allclose(model(x), ref_logits(clip_model, img, txt), atol=ATOL)


def test_fap_vision_to_text_matches_reference(clip_model):
    spec = PromptSpec(text_n_ctx=2, text_depth=3, text_ctx_init="a photo of a", vision_n_ctx=2, vision_depth=3,
                      coupling="vision_to_text")
    model = build(clip_model, spec)
    x = images()
    with torch.no_grad():
        pl = model.prompt_learner
        tdeep = [proj(p) for proj, p in zip(pl.proj_deep, pl.vision_deep)]  # FAP: T_i = G_i(V_i), V_0 = G_0(T_0)
        txt = ref_text(clip_model, "a photo of a", pl.ctx, tdeep)
        img = ref_image(clip_model, x, pl.proj_shallow(pl.ctx), list(pl.vision_deep))
        assert torch.allclose(model(x), ref_logits(clip_model, img, txt), atol=ATOL)


def test_advvp_pad_on_normalised_image_matches_reference(clip_model):
    model = build(clip_model, PromptSpec(vision_n_ctx=2, vision_depth=1, pixel_pad=4, pixel_init_std=1.0,
                                         vision_init_std=1.0, template="a photo of a {}."))
    x = images()
    with torch.no_grad():
        pl = model.prompt_learner
        assert pl.pixel_prompt.std() > 0.5 and pl.vision_shallow.std() > 0.5  # AdvVP's N(0, 1) init
        pad = pl.pixel_prompt.clone()
        pad[:, 4:28, 4:28] = 0  # only a 4-pixel frame is a prompt
        from promptengine.clip.openai_clip import clip

        txt = clip_model.encode_text(clip.tokenize([f"a photo of a {n}." for n in NAMES]))
        img = ref_image(clip_model, x, pl.vision_shallow, pad=pad)
        assert torch.allclose(model(x), ref_logits(clip_model, img, txt), atol=ATOL)


def test_advvp_pixel_space_option_adds_the_pad_before_normalisation(clip_model):
    spec = PromptSpec(vision_n_ctx=0, vision_depth=0, pixel_pad=4, pixel_init_std=0.1, pixel_space="pixel")
    model = build(clip_model, spec)
    x = images()
    with torch.no_grad():
        pad = model.prompt_learner.pixel_prompt * model.prompt_learner.pixel_mask
        std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        img = ref_image(clip_model, x, pad=pad / std)  # (x + p - m) / s = (x - m) / s + p / s
        feats = model.image_features(x, model.prompts())
        assert torch.allclose(feats, F.normalize(img, dim=-1), atol=ATOL)


def test_fap_objective_on_hand_made_logits():
    y = torch.tensor([0, 2])
    clean = torch.tensor([[2.0, 0.0, 1.0], [0.5, 0.5, 1.5]])
    adv = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.5]])
    fc = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    fa = torch.tensor([[1.0, 1.0], [0.0, -1.0]])

    def softmax(row):
        e = [math.exp(v) for v in row]
        return [v / sum(e) for v in e]

    ce = [-math.log(softmax(c)[t]) for c, t in zip(clean.tolist(), y.tolist())]
    kl = [sum(p * math.log(p / q) for p, q in zip(softmax(c), softmax(a))) for c, a in zip(clean.tolist(), adv.tolist())]
    cos = [1 / math.sqrt(2), -1.0]  # cosines of (fc, fa) per row
    lam = 1.5
    total, nat, adv_term = fap_loss(y, clean, adv, fc, fa, lam, "cos")
    expected_adv = sum((c + 1) * k for c, k in zip(cos, kl)) / 2
    assert nat.item() == pytest.approx(sum(ce) / 2, rel=1e-5)
    assert adv_term.item() == pytest.approx(expected_adv, rel=1e-5)
    assert total.item() == pytest.approx(sum(ce) / 2 + lam * expected_adv, rel=1e-5)
    _, _, plain = fap_loss(y, clean, adv, fc, fa, lam, "kl")
    assert plain.item() == pytest.approx(sum(kl) / 2, rel=1e-5)
