"""The weights catalogue (docs/WEIGHTS.md): catalogued names resolve to verified files under the weights root, a
missing or different file is one line naming what to download and where it goes, pins vouch for unpublished files.
No network: every file here is a tiny fake in a temporary weights root."""

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from promptengine.apps.weights import main as weights_main
from promptengine.apps.weights import markdown
from promptengine.cli import run_main
from promptengine.clip.loading import random_clip
from promptengine.clip.openai_clip import clip
from promptengine.engine import digests
from promptengine.errors import UserError
from promptengine.weights import verify
from promptengine.weights.catalogue import Entry, Source, catalogue, read_catalogue
from promptengine.weights.resolve import backbone_changes
from tests.conftest import TOY_OPTS, run_train

ROOT = Path(__file__).resolve().parents[1]
ZS = ["--trainer", "ZeroshotCLIP", "--eval-only", "--seed", "1"]
_AT = TOY_OPTS.index("MODEL.BACKBONE.NAME")
OPTS = [*TOY_OPTS[:_AT], *TOY_OPTS[_AT + 2:], "TEST.MAX_IMAGES", "20"]  # the backbone is each test's own


def zeroshot(out, backbone, root, *opts) -> int:
    """ZeroshotCLIP on the toy data (20 test images) with a backbone and weights root of the test's choosing."""
    return run_train([*ZS, "--output-dir", out, "--backbone", backbone, *OPTS, "MODEL.BACKBONE.DOWNLOAD_ROOT", root,
                      *opts])


def weights_cli(argv) -> int:
    """python tools/weights.py ARGV, in-process (a UserError is one line and exit status 2, as on the command line)."""
    return run_main(lambda: weights_main(argv))


def one_line_error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1, err
    return err[0]


def fake_entry(tmp_path, content: bytes, published: bool) -> Entry:
    """A catalogued file with a known checksum (published or not), its fake copy in the weights root."""
    (tmp_path / "fake.pt").write_bytes(content)
    return Entry(name="fake", title="a fake tower", method="test", arch="ViT-B/32", kind="vision", format="bytes",
                 file="fake.pt", sources=(Source("https://example.org/fake.pt", "test"),),
                 sha256=hashlib.sha256(content).hexdigest() if published else "")


# ---- checksums: refused in one line, accepted when right ------------------------------------------------------
def test_a_file_with_the_wrong_checksum_is_refused_in_one_line_naming_expected_actual_and_the_fix(tmp_path, capsys):
    dest = tmp_path / "chs20" / "fare2-clip" / "open_clip_pytorch_model.bin"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"not the published file")
    out = tmp_path / "out"
    assert zeroshot(out, "fare2-clip", tmp_path) == 2
    line = one_line_error(capsys)
    assert "differs from the published checksum" in line
    assert "expected sha256 9fb1f8759c89905809da8ce761a4b90e1c22beaaea7c68f3917647eeb0a230a7" in line
    assert f"got {hashlib.sha256(b'not the published file').hexdigest()}" in line
    assert f"download it again from https://huggingface.co/chs20/fare2-clip/resolve/main/open_clip_pytorch_model.bin " \
           f"and save it as {dest}" in line
    assert not out.exists()  # refused before anything was written


def test_a_corrupt_openai_file_in_the_weights_root_is_refused(tmp_path):
    (tmp_path / "ViT-B-32.pt").write_bytes(b"truncated")
    openai = clip.clip._MODELS["ViT-B/32"].split("/")[-2]  # OpenAI's SHA-256, from the clip package only
    with pytest.raises(UserError, match=f"ViT-B-32.pt differs from the published checksum: expected sha256 {openai}, "
                                        f"got {hashlib.sha256(b'truncated').hexdigest()}"):
        backbone_changes("ViT-B/32", "", str(tmp_path))
    assert backbone_changes("ViT-B/32", "", str(tmp_path / "empty")) == {}  # absent: clip.load's business, as before


def test_the_right_checksum_is_accepted_and_the_digest_is_cached(tmp_path, monkeypatch):
    content = bytes(range(256)) * 20480  # 5 MiB: the cache key hashes only its first and last MiB
    entry = fake_entry(tmp_path, content, published=True)
    assert verify.require(entry, str(tmp_path)) == str(tmp_path / "fake.pt")
    assert verify.check(entry, str(tmp_path)).status == "ok"

    hashed = []
    real = hashlib.sha256

    class Counting:
        def __init__(self, data=b""):
            hashed.append(len(data))
            self.h = real(data)

        def update(self, data):
            hashed.append(len(data))
            self.h.update(data)

        def hexdigest(self):
            return self.h.hexdigest()

    monkeypatch.setattr(digests.hashlib, "sha256", Counting)
    assert verify.check(entry, str(tmp_path)).status == "ok"
    assert sum(hashed) <= 2 * digests.EDGE_BYTES < len(content)  # the second check did not hash the whole file


# ---- missing, unreleased, unusable ----------------------------------------------------------------------------
def test_a_missing_file_is_one_line_with_every_url_and_the_destination(tmp_path, capsys):
    out = tmp_path / "out"
    assert zeroshot(out, "fare4-vitl14", tmp_path / "w") == 2
    line = one_line_error(capsys)
    assert "https://nc.mlcloud.uni-tuebingen.de/index.php/s/jnQ2qmp9tst8kyQ/download/fare_eps_4.pt" in line
    assert "https://drive.google.com/drive/folders/1KA_oWHCd8uFTHIj8b-xQPgBuw2WJ8YWR" in line
    assert f"save it as {tmp_path / 'w' / 'fare_eps_4.pt'}" in line and "MODEL.BACKBONE.DOWNLOAD_ROOT" in line
    assert not out.exists()


def test_unreleased_and_unloadable_towers_say_why_in_one_line(tmp_path):
    with pytest.raises(UserError, match=r"'pmg-aft-vitb32' .* no released file .* give the file as MODEL.BACKBONE.PATH"):
        backbone_changes("ViT-B/32", "pmg-aft-vitb32", str(tmp_path))
    with pytest.raises(UserError, match=r"cannot be loaded by this toolbox: .*QuickGELU"):
        backbone_changes("fare4-vitb16-laion", "", str(tmp_path))


def test_a_tower_of_another_architecture_or_a_whole_clip_as_path_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"'tecoa2-vitl14' is a ViT-L/14 tower but the backbone is ViT-B/32"):
        backbone_changes("ViT-B/32", "tecoa2-vitl14", str(tmp_path))
    with pytest.raises(UserError, match=r"'fare2-clip' is a whole CLIP, not a vision tower: .*--backbone fare2-clip"):
        backbone_changes("ViT-L/14", "fare2-clip", str(tmp_path))
    with pytest.raises(UserError, match=r"'fare2-vitl14' is a vision tower and sets MODEL.BACKBONE.PATH, which is "
                                        r"already x.pt"):
        backbone_changes("fare2-vitl14", "x.pt", str(tmp_path))


# ---- pins -----------------------------------------------------------------------------------------------------
def test_a_user_pin_vouches_for_a_copy_and_catches_a_later_change(tmp_path, capsys):
    copy = tmp_path / "my_copy.bin"
    copy.write_bytes(b"a verified copy")
    assert verify.check(catalogue()["tecoa2-clip"], str(tmp_path)).status == "missing"
    assert weights_cli(["--root", str(tmp_path), "pin", "tecoa2-clip", str(copy)]) == 0
    dest = tmp_path / "chs20" / "tecoa2-clip" / "open_clip_pytorch_model.bin"
    assert f"runs load it from {dest}: put this file there" in capsys.readouterr().out
    pins = json.loads((tmp_path / "pins.json").read_text())
    assert pins["tecoa2-clip"]["sha256"] == hashlib.sha256(b"a verified copy").hexdigest()

    dest.parent.mkdir(parents=True)
    shutil.copy(copy, dest)
    assert verify.check(catalogue()["tecoa2-clip"], str(tmp_path)).status == "ok"
    assert weights_cli(["--root", str(tmp_path), "check", "tecoa2-clip"]) == 0
    dest.write_bytes(b"a different copy")
    result = verify.check(catalogue()["tecoa2-clip"], str(tmp_path))
    assert result.status == "differs" and "differs from the pinned checksum" in result.message
    assert "(this file is 16 bytes, the catalogued one about 1.71 GB: another release?)" in result.message
    assert "python tools/weights.py pin tecoa2-clip FILE" in result.message and "\n" not in result.message
    assert weights_cli(["--root", str(tmp_path), "check"]) == 1  # every present file; one differs


def test_a_pin_never_overrides_a_published_checksum(tmp_path, capsys):
    copy = tmp_path / "other.bin"
    copy.write_bytes(b"something else")
    assert weights_cli(["--root", str(tmp_path), "pin", "fare2-clip", str(copy)]) == 2
    assert "differs from the published checksum (expected sha256 9fb1f875" in one_line_error(capsys)
    assert not (tmp_path / "pins.json").exists()


def test_an_unpinned_unpublished_file_runs_with_one_warning(tmp_path, capsys):
    entry = fake_entry(tmp_path, b"x", published=False)
    assert verify.require(entry, str(tmp_path)) == str(tmp_path / "fake.pt")
    (warning,) = capsys.readouterr().err.splitlines()
    assert warning.startswith("warning:") and "python tools/weights.py pin fake" in warning


# ---- OpenAI's checksums are the clip package's ----------------------------------------------------------------
@pytest.mark.parametrize("model", ["ViT-B/32", "ViT-B/16", "ViT-L/14"])
def test_openai_entries_carry_the_checksum_of_the_clip_packages_url(model):
    url = clip.clip._MODELS[model]
    published = re.search(r"/([0-9a-f]{64})/([^/]+)$", url)
    entry = catalogue()[model]
    assert (entry.sha256, entry.file, entry.sources[0].url) == (published[1], published[2], url)


# ---- the run: a catalogued name on a tiny model ---------------------------------------------------------------
def test_train_runs_on_a_catalogued_whole_clip_and_records_its_file(tmp_path, tiny_clip_file, capsys):
    root = tmp_path / "w"
    assert weights_cli(["--root", str(root), "pin", "tecoa2-clip", tiny_clip_file]) == 0
    dest = root / "chs20" / "tecoa2-clip" / "open_clip_pytorch_model.bin"
    dest.parent.mkdir(parents=True)
    shutil.copy(tiny_clip_file, dest)
    out = tmp_path / "out"
    assert zeroshot(out, "tecoa2-clip", root) == 0
    assert f"Loading CLIP (backbone: {dest})" in capsys.readouterr().out
    backbone = json.loads((out / "results.json").read_text())["identity"]["identity"]["model"]["backbone"]
    assert backbone["weights_sha256"] == hashlib.sha256(Path(tiny_clip_file).read_bytes()).hexdigest()


def test_train_loads_a_catalogued_vision_tower_given_as_backbone_path(tmp_path, tiny_clip_file, capsys):
    root = tmp_path / "w"
    root.mkdir()
    tower = random_clip("tiny-p8-32", seed=7).visual.state_dict()
    torch.save({"vision_encoder_state_dict": tower, "epoch": 2}, root / "vitb32_eps1.pth.tar")  # TeCoA's layout
    out = tmp_path / "out"
    assert zeroshot(out, "tiny-p8-32", root, "MODEL.BACKBONE.PATH", "tecoa1-vitb32") == 0
    captured = capsys.readouterr()
    assert f"Loading robust vision weights from {root / 'vitb32_eps1.pth.tar'}" in captured.out
    assert "not verified" in captured.err  # no published checksum and no pin: it runs, with one warning
    identity = json.loads((out / "results.json").read_text())["identity"]["identity"]["model"]["backbone"]
    assert identity["vision_tower_sha256"] == hashlib.sha256((root / "vitb32_eps1.pth.tar").read_bytes()).hexdigest()


# ---- the catalogue file and its table in the docs -------------------------------------------------------------
def test_docs_show_the_catalogue_table():
    text = (ROOT / "docs" / "WEIGHTS.md").read_text()
    shown = text.split("<!-- catalogue:start -->\n", 1)[1].split("<!-- catalogue:end -->", 1)[0]
    assert shown == markdown(), "docs/WEIGHTS.md is stale: paste `python tools/weights.py list --markdown` into it"


def test_a_malformed_catalogue_entry_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "catalogue.yaml"
    bad.write_text("x:\n  title: t\n  kind: tower\n")
    with pytest.raises(UserError, match=r"entry 'x' has kind 'tower' \(use one of clip, vision\)"):
        read_catalogue(bad)
    bad.write_text("x:\n  title: t\n  kind: clip\n  sha256: abc\n")
    with pytest.raises(UserError, match=r"entry 'x' has a sha256 that is not 64 lower-case hex digits"):
        read_catalogue(bad)
