"""The per-factor reading of a synthetic dataset's predictions (promptengine.synth.probes.factor_accuracy and
factor_readings): which cue a prediction, clean or attacked, got right."""

import math
import warnings

import pytest
import torch

from promptengine.synth.probes import factor_accuracy, factor_readings
from promptengine.synth.worlds import get_world


def _label(world, part: str, **values: str) -> int:
    """The label, within ``part``, of the class with these factor values (e.g. count='two', shape='star')."""
    lo = 0 if part == "base" else math.ceil(world.num_classes / 2)
    want = tuple(world.values(f).index(values[f]) for f in world.factors)
    return world.class_tuples.index(want) - lo


def test_factor_accuracy_on_hand_made_predictions():
    """SynthCounts (count-major): a prediction with the right count and the wrong shape scores on count only."""
    w = get_world("SynthCounts")
    y = torch.tensor([_label(w, "base", count="one", shape="circle"), _label(w, "base", count="two", shape="star")])
    assert w.classnames[y[0]] == "one circle" and w.classnames[y[1]] == "two stars"
    same_count = torch.tensor([_label(w, "base", count="one", shape="ring"), _label(w, "base", count="two", shape="star")])
    got = factor_accuracy("SynthCounts", "base", same_count, y)
    assert got == {"shape": 50.0, "count": 100.0, "class": 50.0}
    same_shape = torch.tensor([_label(w, "base", count="two", shape="circle"), _label(w, "base", count="one", shape="star")])
    assert factor_accuracy("SynthCounts", "base", same_shape, y) == {"shape": 100.0, "count": 0.0, "class": 0.0}


@pytest.fixture(scope="module")
def shipped_model(tmp_path_factory):
    from promptengine.clip.openai_clip import clip
    from promptengine.synth import weights as W

    path = W.synth_clip_path(str(tmp_path_factory.mktemp("synthclip")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = clip.load(path, device="cpu", jit=False)
    return model.float().eval()


def test_factor_readings_clean_matches_zero_shot_and_the_attack_lowers_it(shipped_model):
    """The clean class row is zero-shot accuracy on the same images; PGD at 4/255 lowers it, and on SynthShapes it
    destroys the shape reading far more than the colour one (measured on 400 images: shape 85.5 -> 8.3 %, colour
    99.8 -> 93.8 %)."""
    got = factor_readings(shipped_model, "SynthShapes", "base", eps_255=4.0, steps=3, n_images=64)
    assert set(got["clean"]) == {"colour", "shape", "class"}
    images_zs = _zero_shot_on_first(shipped_model, "SynthShapes", "base", 64)
    assert got["clean"]["class"] == pytest.approx(images_zs)
    assert got["pgd"]["class"] < got["clean"]["class"] - 30
    assert got["pgd"]["colour"] - got["pgd"]["shape"] > 40


def _zero_shot_on_first(model, name: str, part: str, n: int) -> float:
    """Zero-shot top-1 (%) on the first ``n`` test images of a part, through the pretraining tool's encoders."""
    from promptengine.evaluation.metrics import accuracy
    from promptengine.synth.pretrain import class_text_features, image_features
    from promptengine.synth.probes import _subset

    images, labels, names = _subset(name, "test", part)
    text = class_text_features(model, list(names), get_world(name).template)
    pred = (image_features(model, images[:n]) @ text.t()).argmax(1)
    return accuracy(pred == labels[:n])


def test_factor_requests_are_all_checked_before_any_runs():
    """Every --factors request is parsed up front; a bad one (wrong part, unknown dataset) is a one-line error even
    after good ones, so no minutes are spent before it."""
    from tools.eval_synth_zeroshot import factor_requests

    assert factor_requests(["SynthCounts:base", "SynthShapes"]) == [("SynthCounts", "base"), ("SynthShapes", "all")]
    with pytest.raises(SystemExit, match="part 'half' is not all, base or new"):
        factor_requests(["SynthCounts:base", "SynthCounts:half"])
    with pytest.raises(SystemExit, match="no synthetic dataset 'Nope'"):
        factor_requests(["SynthShapes:new", "Nope:base"])
