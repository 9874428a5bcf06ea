"""The embedded synthetic world: determinism, label order, splits, few-shot, SynthCLIP pretraining and weights."""

from __future__ import annotations

import hashlib
import math
import os
import warnings

import numpy as np
import pytest
import torch

from promptengine.config.merge import build_cfg
from promptengine.data.manager import build_dataset
from promptengine.registry import DATASET_REGISTRY
from promptengine.synth import worlds as Wd
from promptengine.synth.dataset import parse_virtual_path, read_synth_image
from promptengine.synth.render import to_uint8
from promptengine.synth.vocab import VOCAB

SYNTH_DATASETS = tuple(Wd.WORLDS)

# sha256 of the first 500 SynthShapes test images (uint8): pins the definition of the world.
# If you change the renderer on purpose, re-pretrain and re-export SynthCLIP (docs/SYNTH.md) and update this.
SYNTHSHAPES_TEST_CHUNK0_SHA256 = "70d31ac17d67e30258b3a38cdf05b1ed799a6f2740c9a66a3e3a680951471adb"
# the second chunk, read image by image: every chunk has its own generator seed
SYNTHSHAPES_TEST_CHUNK1_SHA256 = "34a7d1b4394c119c5111453f15f8ff86542d11f9ba9ea52f910f1d181dc96541"


def _sha(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SYNTH_DATASETS)
def test_same_seed_same_pixels(name):
    world = Wd.get_world(name)
    labels = torch.arange(60) % world.num_classes
    a = Wd.render_labels(world, labels, seed=123)
    b = Wd.render_labels(world, labels, seed=123)
    c = Wd.render_labels(world, labels, seed=124)
    assert a.dtype == torch.uint8 and a.shape == (60, 32, 32, 3)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.float().std() > 20  # not blank


def test_split_rendering_is_cached_and_reproducible():
    Wd.clear_cache()
    first = Wd.render_split("SynthShapes", "val")
    assert Wd.render_split("SynthShapes", "val") is first  # cached per process
    Wd.clear_cache()
    again = Wd.render_split("SynthShapes", "val")
    assert torch.equal(first, again)
    # another world seed gives other pixels
    assert not torch.equal(first, Wd.render_split("SynthShapes", "val", seed=1))


def test_an_image_read_alone_renders_only_its_chunk_and_matches_the_whole_split():
    """Images read one by one (an evaluation, a skipped run) render only their chunk of CHUNK images, with the same
    pixels as the split rendered whole, whichever is rendered first."""
    Wd.clear_cache()
    last = Wd.SPLIT_SIZES["val"] * Wd.get_world("SynthFills").num_classes - 1
    picks = [0, Wd.CHUNK - 1, Wd.CHUNK, last]
    alone = [Wd.split_image("SynthFills", "val", i).clone() for i in picks]
    assert {k[3] for k in Wd._CHUNK_CACHE if k[:2] == ("SynthFills", "val")} == {0, 1, last // Wd.CHUNK}
    assert ("SynthFills", "val", 0) not in Wd._SPLIT_CACHE
    whole = Wd.render_split("SynthFills", "val")
    assert all(torch.equal(a, whole[i]) for a, i in zip(alone, picks))
    assert not any(k[:2] == ("SynthFills", "val") for k in Wd._CHUNK_CACHE)  # the whole split holds them now
    assert Wd.split_image("SynthFills", "val", Wd.CHUNK + 7).data_ptr() == whole[Wd.CHUNK + 7].data_ptr()


def test_synthshapes_pixels_pinned():
    chunk = Wd.render_split("SynthShapes", "test")[: Wd.CHUNK]
    digest = _sha(chunk)
    if SYNTHSHAPES_TEST_CHUNK0_SHA256 is None:
        pytest.skip(f"no pinned digest yet (current: {digest})")
    assert digest == SYNTHSHAPES_TEST_CHUNK0_SHA256, (
        "the SynthShapes pixels changed: the shipped SynthCLIP and the documented numbers no longer match the world"
    )
    Wd.clear_cache()
    second = torch.stack([Wd.split_image("SynthShapes", "test", i) for i in range(Wd.CHUNK, 2 * Wd.CHUNK)])
    assert _sha(second) == SYNTHSHAPES_TEST_CHUNK1_SHA256, "the second chunk's pixels changed"


def test_to_uint8_rounding():
    x = torch.tensor([0.0, 0.5 / 255, 1.5 / 255, 1.0, 1.2, -0.1]).view(1, 1, 1, 6).expand(1, 3, 1, 6)
    assert to_uint8(x)[0, 0, :, 0].tolist() == [0, 0, 2, 255, 255, 0]


# ---------------------------------------------------------------------------------------------
# classes, labels, splits
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SYNTH_DATASETS)
def test_label_order_base_and_new_hold_disjoint_categories(name):
    """Base = the first half of the categories with every attribute value; new = categories never tuned on."""
    world = Wd.get_world(name)
    names = world.classnames
    sizes = [len(world.values(f)) for f in world.factors]
    assert len(names) == len(set(names)) == world.num_classes == math.prod(sizes)
    m = math.ceil(len(names) / 2)
    tuples = world.class_tuples
    base_cats = {t[-1] for t in tuples[:m]}
    new_cats = {t[-1] for t in tuples[m:]}
    assert not base_cats & new_cats
    assert base_cats | new_cats == set(range(sizes[-1]))
    if len(sizes) > 1:  # every attribute value occurs with every base category
        for cat in base_cats:
            assert {t[0] for t in tuples[:m] if t[-1] == cat} == set(range(sizes[0]))


def test_class_names_read_naturally():
    # count-major: the count is SynthCounts' category (base classes: one and two of every shape)
    assert Wd.get_world("SynthCounts").classnames[:3] == ["one circle", "one square", "one triangle"]
    assert Wd.get_world("SynthCounts").classnames[15:17] == ["two crescents", "three circles"]
    assert "four crosses" in Wd.get_world("SynthCounts").classnames
    assert Wd.get_world("SynthFills").classnames[1] == "striped circle"
    assert Wd.get_world("SynthGlyphs").classnames[0] == "letter a"


def test_shifted_versions_share_classes_with_synthshapes():
    src = Wd.get_world("SynthShapes").classnames
    assert src[:3] == ["red circle", "green circle", "blue circle"]
    for name in ("SynthShapesSketch", "SynthShapesClutter"):
        assert Wd.get_world(name).classnames == src


@pytest.mark.parametrize("name", SYNTH_DATASETS)
def test_dataset_template_matches_world(name):
    cls = DATASET_REGISTRY.get(name)
    assert cls.template == Wd.get_world(name).template
    assert "{}" in cls.template


def _cfg(tmp_path, *opts):
    return build_cfg(opts=["DATASET.FEWSHOT_CACHE_DIR", str(tmp_path / "fewshot"), *opts])


def test_full_splits_sizes_and_images(tmp_path):
    cfg = _cfg(tmp_path, "DATASET.NAME", "SynthGlyphs", "DATASET.ROOT", "/nonexistent/ignored")
    ds = build_dataset(cfg)
    n = Wd.get_world("SynthGlyphs").num_classes
    assert (len(ds.train_x), len(ds.val), len(ds.test)) == (100 * n, 20 * n, 50 * n)
    assert ds.num_classes == n and ds.classnames == Wd.get_world("SynthGlyphs").classnames
    d = ds.test[123]
    assert d.impath == "synth://SynthGlyphs/test/000123" and d.label == 123 % n
    img = ds.read_image(d.impath)
    assert img.mode == "RGB" and img.size == (32, 32)
    pixels = torch.from_numpy(np.asarray(img).copy())
    assert torch.equal(pixels, Wd.render_split("SynthGlyphs", "test")[123])
    assert parse_virtual_path(d.impath) == ("SynthGlyphs", "test", 123)
    from promptengine.errors import UserError

    for bad in ("synth://SynthGlyphs/test/999999", "synth://Nope/test/1", "synth://SynthGlyphs/x/1", "a.png"):
        with pytest.raises(UserError):
            read_synth_image(bad)


def test_fewshot_and_base_new_via_cfg(tmp_path):
    opts = ("DATASET.NAME", "SynthShapes", "DATASET.NUM_SHOTS", "4", "SEED", "1", "DATASET.SUBSAMPLE_CLASSES", "base")
    ds = build_dataset(_cfg(tmp_path, *opts))
    assert ds.num_classes == 32
    assert len(ds.train_x) == 4 * 32 and len(ds.val) == 4 * 32 and len(ds.test) == 50 * 32
    assert sorted({d.label for d in ds.train_x}) == list(range(32))
    cache = tmp_path / "fewshot" / "SynthShapes" / "shot_4-seed_1.json"
    assert cache.is_file()
    again = build_dataset(_cfg(tmp_path, *opts))  # loaded from the cache
    assert again.train_x == ds.train_x
    other = build_dataset(_cfg(tmp_path, *opts[:4], "SEED", "2", *opts[6:]))
    assert other.train_x != ds.train_x
    new = build_dataset(_cfg(tmp_path, *opts[:6], "DATASET.SUBSAMPLE_CLASSES", "new"))
    world = Wd.get_world("SynthShapes")
    assert new.classnames == world.classnames[32:]
    colours = {c.split()[0] for c in new.classnames}
    shapes = {c.split()[1] for c in new.classnames}
    assert colours == set(world.values("colour")) and shapes == set(world.values("shape")[4:])
    assert not set(new.classnames) & set(ds.classnames)


# ---------------------------------------------------------------------------------------------
# pretraining captions
# ---------------------------------------------------------------------------------------------


def _object_captions(n=4000):
    from promptengine.synth.captions import captions_for
    from promptengine.synth.pretrain import POOLS

    world = POOLS["objects"]
    _, factors = Wd.render_scenes(world, torch.arange(n) % world.num_classes, seed=5)
    return factors, captions_for(7, world.kind, world.style, factors)


def test_captions_are_deterministic_and_describe_the_image():
    factors, caps = _object_captions(400)
    assert caps == _object_captions(400)[1]
    shapes = VOCAB["shape"]
    named = [c for c, k in zip(caps, factors["shape"].tolist()) if shapes[k] in c]
    assert len(named) > 0.7 * len(caps)  # most captions name the shape drawn
    wrong_shape = [c for c, k in zip(caps, factors["shape"].tolist())
                   if any(s in c.split() or f"{s}s" in c.split() for s in shapes if s != shapes[k])]
    assert not wrong_shape  # noise is in colour words only


def test_counts_and_fills_are_rarely_named():
    """The deciding cues of SynthCounts and SynthFills are named in a minority of captions (docs/SYNTH.md)."""
    factors, caps = _object_captions()
    multi = [c for c, k in zip(caps, factors["count"].tolist()) if k > 0]
    numbered = [c for c in multi if any(w in c.split() for w in ("two", "three", "four"))]
    filled = [(c, f) for c, f in zip(caps, factors["fill"].tolist()) if f > 0]
    named_fill = [c for c, f in filled if VOCAB["fill"][f] in c.split()]
    assert len(multi) > 500 and len(filled) > 500
    assert 0.08 < len(numbered) / len(multi) < 0.25
    assert 0.15 < len(named_fill) / len(filled) < 0.35
    # the colour and the shape are named far more often
    assert sum(VOCAB["colour"][c] in cap for cap, c in zip(caps, factors["colour"].tolist())) > 0.6 * len(caps)


# ---------------------------------------------------------------------------------------------
# SynthCLIP: pretraining tool, compact artifact, shipped weights
# ---------------------------------------------------------------------------------------------


def _clip_load(path):
    from promptengine.clip.openai_clip import clip

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = clip.load(str(path), device="cpu", jit=False)
    return model.float().eval()


def test_pretrain_tool_reduced_budget(tmp_path, capsys):
    import tools.pretrain_synth_clip as tool
    from promptengine.synth import weights as W

    out, art = tmp_path / "sd.pt", tmp_path / "art.pt"
    args = ["--steps", "3", "--batch-size", "16", "--out", str(out), "--export", "--export-path", str(art)]
    assert tool.main(args + ["--no-progress", "--no-eval"]) == 0
    model = _clip_load(out)
    assert model.visual.input_resolution == 32 and model.context_length == 77
    assert model.token_embedding.weight.shape[0] == 49408
    # the compact artifact expands to exactly what clip.load gives for the full file
    compact = W.load_compact(str(art))
    assert 0 < compact["token_ids"].numel() < 200
    full = tmp_path / "expanded.pt"
    torch.save(W.expand_state(compact), full)
    a, b = model.state_dict(), _clip_load(full).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # deterministic: the same flags give the same weights
    out2 = tmp_path / "sd2.pt"
    assert tool.main(["--steps", "3", "--batch-size", "16", "--out", str(out2), "--no-progress", "--no-eval"]) == 0
    s1, s2 = torch.load(out, weights_only=True), torch.load(out2, weights_only=True)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)


@pytest.fixture(scope="module")
def shipped_model(tmp_path_factory):
    from promptengine.synth import weights as W

    if not os.path.isfile(W.ASSET_PATH):
        pytest.skip("no shipped SynthCLIP artifact (run tools/pretrain_synth_clip.py --export)")
    root = tmp_path_factory.mktemp("synthclip")
    path = W.synth_clip_path(str(root))
    assert os.path.dirname(path) == str(root) and os.path.isfile(path)
    assert W.synth_clip_path(str(root)) == path  # second call reuses the expansion
    return _clip_load(path)


def test_shipped_artifact_is_compact():
    from promptengine.synth import weights as W

    if not os.path.isfile(W.ASSET_PATH):
        pytest.skip("no shipped SynthCLIP artifact")
    assert os.path.getsize(W.ASSET_PATH) < 5_000_000


def test_shipped_synthclip_loads_and_beats_chance(shipped_model):
    from promptengine.synth.pretrain import zero_shot_accuracy

    assert shipped_model.visual.input_resolution == 32
    acc = zero_shot_accuracy(shipped_model, "SynthShapes", "test", limit=480)  # 10 images per class
    assert acc > 25.0, f"SynthCLIP zero-shot on SynthShapes is {acc:.1f}% (chance 2.1%)"


def test_synth_clip_path_env_override(tmp_path, monkeypatch):
    from promptengine.errors import UserError
    from promptengine.synth import weights as W

    f = tmp_path / "mine.pt"
    f.write_bytes(b"x")
    monkeypatch.setenv(W.ENV_WEIGHTS, str(f))
    assert W.synth_clip_path() == str(f)
    monkeypatch.setenv(W.ENV_WEIGHTS, str(tmp_path / "missing.pt"))
    with pytest.raises(UserError):
        W.synth_clip_path()


def test_pretraining_resumes_bit_identically(tmp_path, monkeypatch):
    """A run killed after a checkpoint and started again gives the weights of an uninterrupted run."""
    import dataclasses

    from promptengine.errors import UserError
    from promptengine.synth import pretrain as P

    cfg = P.PretrainConfig(steps=6, batch_size=16, round_steps=2)
    whole, _ = P.pretrain(cfg, progress=False)

    class Killed(Exception):
        pass

    real_save = P.save_checkpoint

    def save_then_die(path, config, step, *rest):
        real_save(path, config, step, *rest)
        if step == 3:  # mid-round: the resumed run must re-render the round's pool
            raise Killed

    ck = tmp_path / "ck.pt"
    monkeypatch.setattr(P, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        P.pretrain(cfg, progress=False, checkpoint=str(ck), checkpoint_every=3)
    monkeypatch.setattr(P, "save_checkpoint", real_save)
    logs = []
    resumed, _ = P.pretrain(cfg, progress=False, checkpoint=str(ck), checkpoint_every=3, log=logs.append)
    assert any("at step 3" in line for line in logs)
    assert whole.keys() == resumed.keys() and all(torch.equal(whole[k], resumed[k]) for k in whole)
    with pytest.raises(UserError, match="lr: checkpoint 0.0008 vs now 0.001"):
        P.pretrain(dataclasses.replace(cfg, lr=1e-3), progress=False, checkpoint=str(ck))


def test_tower_probes_read_the_asked_attribute(shipped_model):
    """Attribute-only zero-shot scores the asked attribute's label; the linear probe learns from correctly labelled
    shots. Measured with the shipped SynthCLIP: colour only 99.8 %, shape only 80.5 %, 16-shot probe (seed 1) 81.8 %."""
    from promptengine.synth.probes import attribute_zero_shot, linear_probe

    assert attribute_zero_shot(shipped_model, "colour") > 90
    assert attribute_zero_shot(shipped_model, "shape") > 60
    probe = linear_probe(shipped_model, "SynthShapes", "base", shots=16, seed=1)
    assert probe["test"] > 60 and probe["l2"] in (1e-4, 1e-3, 1e-2)
    with pytest.raises(ValueError, match="no probe template"):
        attribute_zero_shot(shipped_model, "fill")
