"""Property-based fuzzing of user input (hypothesis, bounded examples).

Config overrides are drawn from the declared domains (``promptengine.config.domains``) and just outside them;
image files and split files are drawn broken in random ways. The property: the input is accepted, or the command
exits with status 2 and exactly one ``error:`` line on stderr, no traceback and no ``results.json``.
"""

import contextlib
import io
import json
import math
import os
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from promptengine.config.domains import Domain, declared_domains
from promptengine.data.images import read_rgb
from promptengine.data.splits import read_split
from promptengine.errors import UserError
from promptengine.registry import TRAINER_REGISTRY
from tests.conftest import TOY_OPTS, run_train

DOMAINS = declared_domains(TRAINER_REGISTRY.get(n) for n in TRAINER_REGISTRY.registered_names())
def fuzz(n: int) -> settings:
    """Bounded, reproducible (derandomized) runs that write no example database."""
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))
NOISE = st.sampled_from(["'abc'", "None", "[]", "True", "1e309", "-1e309", "float('nan')", "(1,)", "''"])


def near_number(d: Domain) -> st.SearchStrategy:
    """Values at, inside and just outside the bounds, the special values, and the wrong type."""
    anchors = [x for x in (d.low, d.high, 0, 1, -1) if x is not None] + list(d.special)
    offsets = st.sampled_from([-2, -1, -0.5, -1e-9, 0, 1e-9, 0.5, 1, 2, 64, 1000])
    if d.kind == "int":
        return st.builds(lambda a, o: repr(int(a + o)), st.sampled_from(anchors), offsets) | st.just("2.5")
    return st.builds(lambda a, o: repr(float(a) + o), st.sampled_from(anchors), offsets) | st.builds(
        lambda a: repr(int(a)), st.sampled_from(anchors))


def value_for(d: Domain) -> st.SearchStrategy:
    if d.kind == "choice":
        return st.sampled_from([repr(c) for c in d.choices]) | st.sampled_from(["nope", "'PGD'", "'LinF'"]) | NOISE
    if d.kind == "seq":
        items = near_number(d.item)
        return st.lists(items, min_size=1, max_size=3).map(lambda xs: "(" + ",".join(xs) + ",)") | NOISE
    return near_number(d) | NOISE


def inside(d: Domain) -> st.SearchStrategy:
    """Values inside the domain (to check that accepted values also build)."""
    if d.kind == "choice":
        return st.sampled_from([repr(c) for c in d.choices])
    if d.kind == "seq":
        return st.lists(inside(d.item), min_size=d.length or 1, max_size=d.length or 2).map(
            lambda xs: "(" + ",".join(xs) + ",)")
    low = d.low if d.low is not None else -5
    high = d.high if d.high is not None else low + 10
    special = st.sampled_from([repr(x) for x in d.special]) if d.special else st.nothing()
    if d.kind == "int":
        return st.integers(int(low), int(min(high, low + 10))).map(repr) | special
    return st.floats(low, min(high, low + 10), exclude_min=d.low_open).map(repr) | special


OVERRIDE = st.sampled_from(sorted(DOMAINS)).flatmap(lambda k: st.tuples(st.just(k), value_for(DOMAINS[k])))


def run_captured(args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = run_train(args)
    return code, err.getvalue().strip().splitlines()


def assert_accepted_or_one_error(code, err, out_dir):
    assert code in (0, 2), (code, err)
    if code == 2:
        assert len(err) == 1 and err[0].startswith("error: "), err
    else:
        assert all(line.startswith(("warning: ", "Note: ")) for line in err), err
    assert not any("Traceback" in line for line in err)
    assert not os.path.exists(os.path.join(out_dir, "results.json"))


@fuzz(150)
@given(st.lists(OVERRIDE, min_size=1, max_size=3))
def test_fuzz_config_overrides_print_config(overrides):
    opts = [x for kv in overrides for x in kv]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "o")
        code, err = run_captured(["--print-config", "--trainer", "CoOp", "--output-dir", out, *opts])
        assert_accepted_or_one_error(code, err, out)
        assert not os.path.exists(out)


CHEAP_KEYS = sorted(k for k in DOMAINS if k not in ("INPUT.SIZE", "DATALOADER.NUM_WORKERS", "TEST.MAX_IMAGES"))
CHEAP = st.sampled_from(CHEAP_KEYS).flatmap(
    lambda k: st.tuples(st.just(k), inside(DOMAINS[k]) | inside(DOMAINS[k]) | value_for(DOMAINS[k])))


TRAINER_OPTS = {  # a setup each trainer accepts on the tiny 4-layer CLIP
    "CoOp": ["TRAINER.COOP.N_CTX", "2"], "APT": ["TRAINER.COOP.N_CTX", "2", "ATTACK.TRAIN.ENABLED", "True"],
    "CAPT": ["TRAINER.CAPT.PROMPT_DEPTH", "2", "ATTACK.TRAIN.ENABLED", "True"],
    "FAP": ["TRAINER.FAP.PROMPT_DEPTH", "2", "ATTACK.TRAIN.ENABLED", "True"], "VPT": [],
}
BUILD_CODES: list = []


@fuzz(20)
@given(st.lists(CHEAP, min_size=1, max_size=2), st.sampled_from(["CoOp", "CAPT", "FAP", "APT", "VPT"]))
def test_fuzz_config_overrides_build(overrides, trainer):
    """Accepted values must also build the data and model (``--no-train`` on the toy setup)."""
    opts = [x for kv in overrides for x in kv]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "o")
        args = ["--trainer", trainer, "--no-train", "--output-dir", out, *TOY_OPTS, *TRAINER_OPTS[trainer], *opts]
        code, err = run_captured(args)
        BUILD_CODES.append(code)
        assert_accepted_or_one_error(code, err, out)
        if code == 2:
            assert not os.path.exists(out)


def test_fuzz_build_accepted_some_inputs():
    """The build fuzz is not vacuous: some drawn configs were accepted and built (runs after it, same module)."""
    if not BUILD_CODES:
        test_fuzz_config_overrides_build()
    assert 0 in BUILD_CODES and 2 in BUILD_CODES


# ---------------------------------------------------------------------------------------------- images
MODES = ["RGB", "RGBA", "L", "LA", "P", "1", "I;16", "I", "F", "CMYK"]


def image_bytes(mode: str, fmt: str, w: int, h: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    if mode in ("I;16", "I", "F"):
        dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
        img = Image.fromarray(rng.integers(0, 60000, (h, w)).astype(dtype))  # uint16 -> I;16, int32 -> I, float32 -> F
    else:
        img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


FORMATS = {"PNG": ["RGB", "RGBA", "L", "LA", "P", "1", "I;16"], "JPEG": ["RGB", "L", "CMYK"],
           "TIFF": ["RGB", "RGBA", "L", "I;16", "I", "F", "CMYK"], "BMP": ["RGB", "L", "P", "1"],
           "GIF": ["P", "L"]}
BROKEN = st.sampled_from(["none", "truncate", "flip", "garbage", "empty", "prefix"])


@fuzz(120)
@given(st.sampled_from(sorted(FORMATS)).flatmap(lambda f: st.tuples(st.just(f), st.sampled_from(FORMATS[f]))),
       st.integers(1, 24), st.integers(1, 24), st.integers(0, 2**16), BROKEN, st.floats(0, 1))
def test_fuzz_image_files(fmt_mode, w, h, seed, breakage, where):
    fmt, mode = fmt_mode
    data = image_bytes(mode, fmt, w, h, seed)
    cut = int(len(data) * where)
    if breakage == "truncate":
        data = data[:cut]
    elif breakage == "flip" and data:
        data = data[:cut] + bytes([data[min(cut, len(data) - 1)] ^ 0xFF]) + data[cut + 1:]
    elif breakage == "garbage":
        data = np.random.default_rng(seed).integers(0, 256, cut + 1, dtype=np.uint8).tobytes()
    elif breakage == "empty":
        data = b""
    elif breakage == "prefix":
        data = b"\x00" * 3 + data
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"img.{fmt.lower()}")
        with open(path, "wb") as f:
            f.write(data)
        try:
            img = read_rgb(path)
        except UserError as exc:
            assert "img." in str(exc) and "\n" not in str(exc)
            return
        arr = np.asarray(img)
        assert img.mode == "RGB" and arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
        if breakage == "none":
            assert arr.shape[:2] == (h, w)


# ---------------------------------------------------------------------------------------------- split files
ENTRY_VALUE = st.one_of(st.integers(-3, 6), st.text(max_size=6), st.none(), st.floats(allow_nan=True),
                        st.sampled_from(["../x.jpg", "/abs.jpg", "a/../../b.jpg", "", "c0/0.jpg"]),
                        st.lists(st.integers(0, 3), max_size=3))


def good_split():
    names = ["cat", "dog", "owl"]
    make = lambda split, n: [[f"c{k}/{split}{i}.jpg", k, names[k]] for k in range(3) for i in range(n)]  # noqa: E731
    return {"train": make("tr", 2), "val": make("va", 1), "test": make("te", 1)}


@st.composite
def broken_split(draw):
    split = good_split()
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["set", "drop_key", "empty", "dup", "replace_entry", "not_dict"]))
        key = draw(st.sampled_from(["train", "val", "test"]))
        if action == "not_dict":
            return draw(st.sampled_from([[], "x", 3, None]))
        if action == "drop_key":
            split.pop(key, None)
        elif key not in split or not isinstance(split[key], list) or not split[key]:
            continue
        elif action == "empty":
            split[key] = []
        elif action == "dup":
            split[key].append(split[key][0])
        elif action == "replace_entry":
            split[key][draw(st.integers(0, len(split[key]) - 1))] = draw(ENTRY_VALUE)
        else:
            entry = split[key][draw(st.integers(0, len(split[key]) - 1))]
            if isinstance(entry, list) and len(entry) == 3:
                entry[draw(st.integers(0, 2))] = draw(ENTRY_VALUE)
    return split


@fuzz(200)
@given(broken_split())
def test_fuzz_split_files(split):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "split.json")
        with open(path, "w") as f:
            json.dump(split, f, allow_nan=True)
        try:
            train, val, test = read_split(path, os.path.join(tmp, "images"))
        except UserError as exc:
            assert "\n" not in str(exc) and "split.json" in str(exc)
            return
        labels = {d.label for d in train + val + test}
        assert labels == set(range(len(labels))) and test and train
        assert all(d.impath.startswith(os.path.join(tmp, "images") + os.sep) for d in train + val + test)
        assert all(d.classname.strip() and not math.isnan(d.label) for d in train + val + test)
