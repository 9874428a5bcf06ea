"""The shared prompt-injection mechanism, CLIP loading, and every prompt layout on two CLIP widths."""

import pytest
import torch

from promptengine.clip.backbone import PromptableCLIP
from promptengine.clip.loading import load_clip, random_clip
from promptengine.clip.model import PromptedCLIP
from promptengine.clip.prompt_learner import PromptSpec
from promptengine.clip.text_prompts import ClassPrompts
from promptengine.errors import UserError

NAMES = ["red circle", "blue square", "green star"]


@pytest.fixture(scope="module")
def backbone():
    return PromptableCLIP(random_clip("tiny-p8-32", seed=0).float().eval())


def test_plain_path_equals_clip(backbone):
    clip_model = backbone.clip
    tokens = backbone.tokenize(["a photo of a red circle.", "a dog."])
    assert torch.allclose(backbone.encode_text(tokens), clip_model.encode_text(tokens), atol=1e-5)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(backbone.encode_image(x), clip_model.encode_image(backbone.normalizer(x)), atol=1e-6)


def test_text_truncation_is_exact(backbone):
    tokens = backbone.tokenize(NAMES)
    emb = backbone.embed_tokens(tokens)
    eot = tokens.argmax(-1)
    cut = backbone.encode_text_embeddings(emb, eot)
    x = (emb + backbone.clip.positional_embedding).permute(1, 0, 2)
    full = backbone.clip.ln_final(backbone.clip.transformer(x).permute(1, 0, 2))
    full = full[torch.arange(3), eot] @ backbone.clip.text_projection
    assert torch.allclose(cut, full, atol=1e-5)


SPECS = {
    "coop": PromptSpec(text_n_ctx=4),
    "coop_csc_front": PromptSpec(text_n_ctx=4, text_csc=True, class_token_position="front"),
    "coop_middle": PromptSpec(text_n_ctx=4, class_token_position="middle"),
    "cocoop": PromptSpec(text_n_ctx=4, conditional=True),
    "vpt_deep": PromptSpec(vision_n_ctx=3, vision_depth=2),
    "ivlp": PromptSpec(text_n_ctx=2, text_depth=2, vision_n_ctx=3, vision_depth=2),
    "maple": PromptSpec(text_n_ctx=2, text_depth=2, text_ctx_init="a photo of a", vision_n_ctx=2, vision_depth=2,
                        coupling="text_to_vision"),
    "fap": PromptSpec(text_n_ctx=2, text_depth=2, vision_n_ctx=2, vision_depth=2, coupling="vision_to_text"),
    "advvp": PromptSpec(vision_n_ctx=2, vision_depth=1, pixel_pad=3),
}


@pytest.mark.parametrize("arch", ["tiny-p8-16", "tiny-p8-32"])
@pytest.mark.parametrize("name", list(SPECS))
def test_every_layout_any_width(arch, name):
    bb = PromptableCLIP(random_clip(arch).float().eval())
    model = PromptedCLIP(bb, SPECS[name], NAMES)
    x = torch.rand(2, 3, 24, 24)  # not the model resolution: resized inside the model
    for mode in (True, False):
        model.train(mode)
        logits = model(x)
        assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    logits.sum().backward()
    learnable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert learnable and all(n.startswith("prompt_learner.") for n in learnable)
    assert all(p.grad is not None for p in model.prompt_learner.parameters())
    assert all(p.grad is None for p in bb.parameters())


def test_classifier_matches_forward_and_is_detached(backbone):
    model = PromptedCLIP(backbone, SPECS["fap"], NAMES)
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    logits = model.classifier()(x)
    assert torch.allclose(logits, expected, atol=1e-5) and not logits.requires_grad


def test_class_token_positions(backbone):
    n_ctx = 4
    for position in ("end", "front", "middle"):
        cp = ClassPrompts(backbone, ["red circle"], n_ctx=n_ctx, position=position)
        ctx = torch.full((n_ctx, backbone.text_width), 7.0)
        emb = cp.assemble(ctx)[0]
        is_ctx = (emb == 7.0).all(-1).nonzero().flatten().tolist()
        name_len = int(cp.name_lens[0])
        if position == "end":
            assert is_ctx == [1, 2, 3, 4]
        elif position == "front":
            assert is_ctx == list(range(1 + name_len, 1 + name_len + n_ctx))
        else:
            assert is_ctx == [1, 2] + list(range(3 + name_len, 5 + name_len))


def test_partial_ctx_init_keeps_the_rest_of_the_phrase(backbone):
    cp = ClassPrompts(backbone, ["dog"], n_ctx=2, ctx_init="a photo of a")
    assert cp.prefix_text == "a photo of a"
    phrase = backbone.embed_tokens(backbone.tokenize(["a photo"]))[0, 1:3]
    assert torch.allclose(cp.init_ctx, phrase)


def test_class_name_too_long_is_one_line(backbone):
    with pytest.raises(UserError, match="prompt too long"):
        ClassPrompts(backbone, ["word " * 80], n_ctx=4)


def test_load_from_saved_file_through_clip_load(tiny_clip_file):
    model = load_clip(tiny_clip_file)
    reference = random_clip("tiny-p8-32", seed=3)
    for (k, a), (_, b) in zip(model.state_dict().items(), reference.state_dict().items()):
        assert torch.allclose(a.float(), b.float(), atol=2e-3), k  # clip.load round-trips through fp16
    assert not any(p.requires_grad for p in model.parameters()) and not model.training


def test_unknown_backbone_names_closest():
    with pytest.raises(UserError, match="did you mean 'ViT-B/16'"):
        load_clip("ViT-B16")


def test_offline_weights_fail_at_once(tmp_path):
    with pytest.raises(UserError, match=r"not available offline: put ViT-B-32.pt into"):
        load_clip("ViT-B/32", download_root=str(tmp_path))
