"""Multi-process data parallelism on CPU (gloo): torchrun training equals a single-process run with the same
global batch, only rank 0 writes or prints outputs, and the collectives of ``promptengine.distributed``
give the expected values (one torchrun launch covers all of it: process start-up dominates the cost)."""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as tdist

from promptengine.engine.checkpoint import safe_load
from promptengine.evaluation.perimage import unpack_bits
from tests.conftest import ROOT, TOY_OPTS, run_train

pytestmark = pytest.mark.skipif(not (tdist.is_available() and tdist.is_gloo_available()), reason="needs gloo")

# CAPT on the toy set: global batch 8 (2 ranks x 4), 2 epochs x 10 steps, PGD-2 KL training attack with random
# start (drawn per image from (seed, epoch, index), so a rank's half batch gets the same starts), PGD-2 test attack,
# alpha averaged over the global batch (ALPHA_REDUCTION batch: all-reduced across ranks), no augmentation.
RUN_OPTS = [
    *TOY_OPTS, "TRAINER.CAPT.PROMPT_DEPTH", "2", "TRAINER.CAPT.PREC", "fp32", "TRAIN.CHECKPOINT_FREQ", "1",
    "TRAINER.CAPT.ALPHA_REDUCTION", "batch",
    "ATTACK.TRAIN.ENABLED", "True", "ATTACK.TRAIN.STEPS", "2", "ATTACK.TRAIN.EPS", "4.0", "ATTACK.TRAIN.LOSS", "kl",
    "ATTACK.TEST.ENABLED", "True", "ATTACK.TEST.STEPS", "2", "ATTACK.TEST.EPS", "4.0",
]


def capt_args(out, *extra, seed="1"):
    return ["--trainer", "CAPT", "--seed", seed, "--output-dir", str(out), *RUN_OPTS, *extra]


def torchrun(args, nproc, audit_dir):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PE_WRITE_AUDIT": str(audit_dir), "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           os.path.join(ROOT, "tests", "ddp_launcher.py"), *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


def prompts(out, epoch):
    return safe_load(str(out / "prompt_learner" / f"model.pth.tar-{epoch}"))["state_dict"]


def test_torchrun_two_ranks_match_single_process(tmp_path):
    single, ddp, audit = tmp_path / "single", tmp_path / "ddp", tmp_path / "audit"
    audit.mkdir()
    proc = torchrun(capt_args(ddp), 2, audit)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert run_train(capt_args(single)) == 0

    # same learnable parameters after each epoch (gradients of 2 x 4 images averaged = gradient of the 8-image batch)
    for epoch in (1, 2):
        a, b = prompts(single, epoch), prompts(ddp, epoch)
        assert list(a) == list(b)
        for k in a:
            assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5), (epoch, k, float((a[k] - b[k]).abs().max()))

    # sharded evaluation gathered on rank 0: every test image once, same clean and robust results
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (single, ddp))
    assert rb["clean"]["total"] == ra["clean"]["total"] == 40
    assert abs(ra["clean"]["correct"] - rb["clean"]["correct"]) <= 1
    assert len(ra["robust"]) == len(rb["robust"]) == 1
    assert abs(ra["robust"][0]["correct"] - rb["robust"][0]["correct"]) <= 1
    # per-image records of the gathered evaluation: the same items, in dataset order, the same images right
    pa, pb = ra["per_image"], rb["per_image"]
    assert pa["items"] == pb["items"] and pa["n"] == pb["n"] == 40
    for key in ("clean", "worst_case"):
        a_bits, b_bits = unpack_bits(pa[key], 40), unpack_bits(pb[key], 40)
        assert (a_bits ^ b_bits).bit_count() <= 1, key

    # only rank 0 writes: one log, and the write audit of rank 1 is empty while rank 0's has the outputs
    assert sorted(p.name for p in ddp.iterdir() if p.name.startswith("log.txt")) == ["log.txt"]
    rank0 = (audit / "writes-rank0.txt").read_text()
    rank1 = (audit / "writes-rank1.txt").read_text()
    assert "log.txt" in rank0 and "model.pth.tar-2" in rank0 and "results.json" in rank0
    assert rank1 == "", rank1
    # and only rank 0 prints (the other ranks' stdout is silenced)
    assert proc.stdout.count("Loading trainer: CAPT") == 1
    log = (ddp / "log.txt").read_text()
    assert log.count(" summary: ") == 2 and "Finish training" in log

    # the collectives, exercised by the same 2 ranks after training
    for rank in (0, 1):
        r = torch.load(audit / f"collectives-rank{rank}.pt")
        assert r["world"] == 2
        # the second call averaged the first call's averages again: unchanged values
        assert torch.equal(r["g1"], torch.full((3,), 1.5)) and torch.equal(r["g2"], torch.full((2, 2), 5.0))
        assert r["ok_all"] is True and r["ok_one"] is False  # one rank's non-finite flag reaches every rank
        assert torch.equal(r["w"], torch.zeros(4))  # rank 0's values everywhere
        assert r["metrics"] == {"loss": 1.5, "acc": 25.0}
    g = torch.load(audit / "collectives-rank0.pt")["gathered"]
    assert g["index"].tolist() == [0, 1, 2, 3] and g["pred"].tolist() == [10, 11, 10, 11]


AUGMENT = ["INPUT.TRANSFORMS", "('random_resized_crop', 'random_flip')", "DATASET.NUM_SHOTS", "8"]


@pytest.mark.slow
def test_torchrun_augmentation_is_per_rank_and_reproducible_and_fewshot_is_rank_zeros(tmp_path):
    """With augmentation on, each rank draws its own stream (rank 0 the single process's): a 2-rank run is reproducible
    but NOT equal to one process. Few-shot subsets are sampled by rank 0 alone, also when the seed is negative."""
    runs = {}
    for name in ("a", "b"):
        audit = tmp_path / f"audit_{name}"
        audit.mkdir()
        out = tmp_path / f"run_{name}"
        proc = torchrun(capt_args(out, *AUGMENT, "DATASET.FEWSHOT_CACHE_DIR", str(out / "fs")), 2, audit)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        runs[name] = audit
    for epoch in (1, 2):  # reproducible for a given world size
        a, b = prompts(tmp_path / "run_a", epoch), prompts(tmp_path / "run_b", epoch)
        assert all(torch.equal(a[k], b[k]) for k in a)
    seeds = [(runs["a"] / f"augseeds-rank{r}.txt").read_text().split() for r in (0, 1)]
    assert seeds[0] == ["1000", "1001"]  # rank 0: the single process's per-epoch seeds (SEED * 1000 + epoch)
    assert len(seeds[1]) == 2 and not set(seeds[0]) & set(seeds[1])  # rank 1: streams of its own
    assert "fs" in (runs["a"] / "writes-rank0.txt").read_text()  # rank 0 wrote the few-shot cache...
    assert (runs["a"] / "writes-rank1.txt").read_text() == ""  # ...and rank 1 wrote nothing
    single = tmp_path / "single"
    assert run_train(capt_args(single, *AUGMENT)) == 0
    a, s = prompts(tmp_path / "run_a", 2), prompts(single, 2)
    assert any(not torch.allclose(a[k], s[k], rtol=1e-4, atol=1e-5) for k in a)  # documented: not one process

    # an unseeded run: no cache, and every rank trains on rank 0's draw (4 classes x 8 shots in all)
    audit = tmp_path / "audit_unseeded"
    audit.mkdir()
    proc = torchrun(capt_args(tmp_path / "unseeded", *AUGMENT, "OPTIM.MAX_EPOCH", "1", seed="-1"), 2, audit)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    items = [set((audit / f"trainitems-rank{r}.txt").read_text().split()) for r in (0, 1)]
    assert len(items[0]) == len(items[1]) == 16 and not items[0] & items[1] and len(items[0] | items[1]) == 32
