"""Contrastive pretraining of SynthCLIP on web-like captioned images of the synthetic world.

Each image is rendered from random factors and gets one caption that names some of them (captions.py). The
objective is CLIP's symmetric InfoNCE over the batch's images and captions, with every caption that *could describe*
an image counted as a positive of it ("a circle." describes every circle in the batch): the multi-positive form keeps
the web-caption setting while not calling true descriptions negatives. Images come from seeds in the
``"synth2-pretrain"`` namespace, disjoint from every dataset split; each rendered image is used in ``reuse`` batches.

Everything is seeded: on one machine (same torch build, same thread count) the same settings give
the same weights, bit for bit.

Speed tricks that do not change the model that is saved:
- captions are at most 15 tokens, so the text tower runs on the first ``text_len`` = 16 positions
  (the causal mask makes later positions irrelevant to the EOT feature);
- the token embedding is trained as a compact table of the rows the captions can use (~100 tokens); the
  other rows receive no gradient and keep their fixed initialisation (:func:`model.token_init`),
  so the full table is the initial table with the trained rows written back.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..clip.openai_clip import clip
from ..evaluation.metrics import accuracy
from . import model as M
from .captions import all_caption_token_ids, compatible, constraint_matrix, described, factor_matrix, tokenize
from .resume import load_checkpoint, save_checkpoint
from .worlds import World, derive_seed, get_world, render_scenes, render_split, split_labels

# Pretraining pools and their fractions of each batch. Every factor of a pool image is drawn at random (object
# pools draw fills and counts more broadly than the datasets do); captions describe the image (captions.py). The
# sketch style is lightly represented; the clutter style is held out entirely.
POOLS: Dict[str, World] = {
    "objects": World("pretrain-objects", "objects", "photo", ("colour", "shape"), "", nuisance="pretrain"),
    "sketches": World("pretrain-sketches", "objects", "sketch", ("colour", "shape"), "", nuisance="pretrain"),
    "glyphs": World("pretrain-glyphs", "glyphs", "photo", ("glyph",), ""),
    "patterns": World("pretrain-patterns", "patterns", "photo", ("colour", "pattern"), ""),
}
DEFAULT_MIXTURE: Tuple[Tuple[str, float], ...] = (
    ("objects", 0.62),
    ("sketches", 0.05),
    ("glyphs", 0.15),
    ("patterns", 0.18),
)


@dataclass
class PretrainConfig:
    steps: int = 4000
    batch_size: int = 160
    lr: float = 8e-4
    warmup_frac: float = 0.05
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    max_logit_scale: float = 100.0
    seed: int = 0
    text_len: int = 16
    reuse: int = 2  # each rendered image appears in about this many batches
    round_steps: int = 25  # a new pool of images is rendered every round_steps steps
    mixture: Tuple[Tuple[str, float], ...] = DEFAULT_MIXTURE
    model: Dict[str, int] = field(default_factory=lambda: dict(M.SYNTHCLIP_CONFIG))
    threads: int = 0  # 0 = leave torch's default

    def counts(self) -> List[Tuple[str, int]]:
        """Images per batch from each pool (largest remainder rounding, sums to batch_size)."""
        total = sum(w for _, w in self.mixture)
        raw = [(name, self.batch_size * w / total) for name, w in self.mixture]
        counts = {name: int(math.floor(r)) for name, r in raw}
        rest = self.batch_size - sum(counts.values())
        for name, _ in sorted(raw, key=lambda x: -(x[1] - math.floor(x[1])))[:rest]:
            counts[name] += 1
        return [(name, counts[name]) for name, _ in self.mixture if counts[name] > 0]


# ---------------------------------------------------------------------------------------------
# data stream
# ---------------------------------------------------------------------------------------------


class PretrainStream:
    """Images rendered every ``round_steps`` steps with one web-like caption each; batches drawn from the pool."""

    def __init__(self, cfg: PretrainConfig) -> None:
        unknown = [n for n, _ in cfg.mixture if n not in POOLS]
        if unknown:
            raise ValueError(f"unknown pretraining pool(s) {unknown} (known: {', '.join(POOLS)})")
        self.cfg = cfg
        self.counts = cfg.counts()
        self.images: Dict[str, torch.Tensor] = {}
        self.tokens: Dict[str, torch.Tensor] = {}
        self.factors: Dict[str, torch.Tensor] = {}
        self.constraints: Dict[str, torch.Tensor] = {}
        self.pool_id: Dict[str, int] = {}
        self.round = -1

    def _render_round(self, r: int) -> None:
        cfg = self.cfg
        for p, (name, b) in enumerate(self.counts):
            world = POOLS[name]
            n_img = max(b, int(math.ceil(b * cfg.round_steps / cfg.reuse)))
            g = torch.Generator().manual_seed(derive_seed("synth2-pretrain", name, cfg.seed, r, "labels"))
            labels = torch.randint(0, world.num_classes, (n_img,), generator=g)
            images, factors = render_scenes(world, labels, derive_seed("synth2-pretrain", name, cfg.seed, r))
            texts, named = described(derive_seed("synth2-captions", name, cfg.seed, r), world.kind, world.style,
                                     factors)
            self.images[name] = images
            self.tokens[name] = tokenize(texts, cfg.text_len)
            self.factors[name] = factor_matrix(factors, n_img)
            self.constraints[name] = constraint_matrix(named)
            self.pool_id[name] = p
        self.round = r

    def batch(self, step: int):
        """Images (B, 3, H, W) in [0, 1], their captions (B, text_len) and which caption could describe which image
        (B, B) bool: the positives of the contrastive loss."""
        cfg = self.cfg
        r = step // cfg.round_steps
        if r != self.round:
            self._render_round(r)
        g = torch.Generator().manual_seed(derive_seed("synth2-pretrain-batch", cfg.seed, step))
        imgs, toks, facs, cons, pools = [], [], [], [], []
        for name, b in self.counts:
            idx = torch.randint(0, self.images[name].shape[0], (b,), generator=g)
            imgs.append(self.images[name][idx])
            toks.append(self.tokens[name][idx])
            facs.append(self.factors[name][idx])
            cons.append(self.constraints[name][idx])
            pools.append(torch.full((b,), self.pool_id[name], dtype=torch.long))
        pool = torch.cat(pools)
        positives = compatible(torch.cat(facs), pool, torch.cat(cons), pool)
        return M.uint8_to_float(torch.cat(imgs)), torch.cat(toks), positives


# ---------------------------------------------------------------------------------------------
# compact text embedding
# ---------------------------------------------------------------------------------------------


class CompactTokens(torch.nn.Module):
    """The trained rows of the token embedding plus a full-vocab -> compact index map."""

    def __init__(self, full_weight: torch.Tensor, used_ids: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("used_ids", used_ids.clone())
        remap = torch.zeros(full_weight.shape[0], dtype=torch.long)
        remap[used_ids] = torch.arange(used_ids.numel()) + 1  # 0 = any unused token (padding)
        self.register_buffer("remap", remap)
        pad_row = full_weight[:1].clone()  # row of token id 0, only ever seen after EOT
        self.register_buffer("pad_row", pad_row)
        self.weight = torch.nn.Parameter(full_weight[used_ids].clone())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        table = torch.cat([self.pad_row, self.weight])
        return F.embedding(self.remap[tokens], table)

    def write_back(self, full_weight: torch.Tensor) -> torch.Tensor:
        out = full_weight.clone()
        out[self.used_ids] = self.weight.detach()
        return out


def encode_text_compact(model, emb: CompactTokens, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text`` with the compact embedding (same computation as clip's)."""
    n_ctx = tokens.shape[-1]
    x = emb(tokens) + model.positional_embedding[:n_ctx]
    x = x.permute(1, 0, 2)
    x = model.transformer(x)
    x = x.permute(1, 0, 2)
    x = model.ln_final(x)
    return x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ model.text_projection


def multi_positive_contrastive_loss(img: torch.Tensor, txt: torch.Tensor, positives: torch.Tensor,
                                   scale: torch.Tensor):
    """Symmetric InfoNCE between B images and their B captions with many positives per row.

    ``positives[i, j]``: caption j could describe image i (:func:`captions.compatible`). Image -> text is
    cross-entropy over the B captions against a uniform target on image i's positives; text -> image likewise over
    the B images. The two directions are averaged. With the diagonal as the only positive this is CLIP's loss.
    """
    img = F.normalize(img, dim=-1)
    txt = F.normalize(txt, dim=-1)
    logits = scale * img @ txt.t()  # (B, B)
    pos = positives.float()
    loss_i = -(pos / pos.sum(1, keepdim=True) * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_t = -(pos.t() / pos.t().sum(1, keepdim=True) * F.log_softmax(logits.t(), dim=1)).sum(1).mean()
    return (loss_i + loss_t) * 0.5, logits


# ---------------------------------------------------------------------------------------------
# zero-shot evaluation (used for progress and by tools/eval_synth_zeroshot.py)
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def class_text_features(model, classnames: List[str], template: str) -> torch.Tensor:
    tokens = clip.tokenize([template.format(c) for c in classnames])
    feats = model.encode_text(tokens)
    return F.normalize(feats.float(), dim=-1)


@torch.no_grad()
def image_features(model, images_uint8: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    out = []
    for s in range(0, images_uint8.shape[0], batch_size):
        x = M.normalize(M.uint8_to_float(images_uint8[s : s + batch_size]))
        out.append(F.normalize(model.encode_image(x).float(), dim=-1))
    return torch.cat(out)


def zero_shot_accuracy(model, name: str, split: str = "test", limit: int = -1, classes: Optional[str] = None) -> float:
    """Zero-shot top-1 accuracy (%) on a world split; ``classes`` = None (all) | "base" | "new"."""
    world = get_world(name)
    images = render_split(name, split)
    labels = split_labels(world, split)
    if limit > 0:
        images, labels = images[:limit], labels[:limit]
    names = world.classnames
    keep = list(range(len(names)))
    if classes in ("base", "new"):
        m = math.ceil(len(names) / 2)
        keep = keep[:m] if classes == "base" else keep[m:]
        mask = (labels >= keep[0]) & (labels <= keep[-1])
        images, labels = images[mask], labels[mask] - keep[0]
        names = [names[i] for i in keep]
    txt = class_text_features(model, names, world.template)
    img = image_features(model, images)
    pred = (img @ txt.t()).argmax(1)
    return accuracy(pred == labels)


# ---------------------------------------------------------------------------------------------
# training loop
# ---------------------------------------------------------------------------------------------


def lr_at(step: int, cfg: PretrainConfig) -> float:
    warm = max(1, int(round(cfg.steps * cfg.warmup_frac)))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, cfg.steps - warm)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * t))


def pretrain(
    cfg: PretrainConfig,
    progress: bool = True,
    log: Callable[[str], None] = print,
    eval_every: int = 0,
    checkpoint: str = "",
    checkpoint_every: int = 250,
) -> Tuple[Dict[str, torch.Tensor], Dict]:
    """Train SynthCLIP; returns (fp32 state dict with the full token table, info dict).

    ``checkpoint``: a file the training state is written to every ``checkpoint_every`` steps and at the end; if it
    exists, the run resumes from it (bit-identical to an uninterrupted run, :mod:`promptengine.synth.resume`).
    """
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    t_start, cpu_start = time.time(), time.process_time()
    mcfg = M.model_config(**cfg.model)
    model = M.build_synthclip(seed=cfg.seed, cfg=mcfg)
    model.train()
    stream = PretrainStream(cfg)
    used = all_caption_token_ids()
    full_init = model.token_embedding.weight.detach().clone()
    emb = CompactTokens(full_init, used)
    model.token_embedding.weight.requires_grad_(False)

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim >= 2 and "embedding" not in name:
            decay.append(p)
        else:
            no_decay.append(p)
    no_decay.append(emb.weight)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
        foreach=True,
    )
    max_log_scale = math.log(cfg.max_logit_scale)
    params = [p for grp in opt.param_groups for p in grp["params"]]
    bar = None
    if progress:
        bar = tqdm(total=cfg.steps, desc="pretrain SynthCLIP", unit="step", dynamic_ncols=True)
    history: list = []
    loss_ema = None
    start, spent_before, cpu_before = 0, 0.0, 0.0
    plain_cfg = _plain(asdict(cfg))
    if checkpoint and os.path.isfile(checkpoint):
        ck = load_checkpoint(checkpoint, plain_cfg)
        model.load_state_dict(ck["model"])
        with torch.no_grad():
            emb.weight.copy_(ck["emb"])
        opt.load_state_dict(ck["opt"])
        start, loss_ema, history = ck["step"], ck["loss_ema"], ck["history"]
        spent_before, cpu_before = ck["seconds"], ck["cpu_seconds"]
        log(f"resuming pretraining from {checkpoint} at step {start}")
        if bar is not None:
            bar.update(start)
    for step in range(start, cfg.steps):
        images, tokens, positives = stream.batch(step)
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step, cfg)
        img_f = model.encode_image(M.normalize(images))
        txt_f = encode_text_compact(model, emb, tokens)
        loss, _ = multi_positive_contrastive_loss(img_f, txt_f, positives, model.logit_scale.exp())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0.0, max_log_scale)
        lv = float(loss.detach())
        if not math.isfinite(lv):
            raise FloatingPointError(f"pretraining diverged at step {step} (loss {lv}); lower --lr")
        loss_ema = lv if loss_ema is None else 0.95 * loss_ema + 0.05 * lv
        if bar is not None:
            bar.update(1)
            if step % 10 == 0 or step == cfg.steps - 1:
                bar.set_postfix(loss=f"{loss_ema:.3f}", scale=f"{float(model.logit_scale.exp()):.1f}")
        if eval_every and (step + 1) % eval_every == 0 and step + 1 < cfg.steps:
            model.eval()
            with torch.no_grad():
                model.token_embedding.weight.copy_(emb.write_back(full_init))
            acc = zero_shot_accuracy(model, "SynthShapes", "val")
            history.append((step + 1, round(loss_ema, 4), round(acc, 2)))
            log(f"step {step + 1}: loss {loss_ema:.3f} SynthShapes val zero-shot {acc:.1f}%")
            model.train()
        if checkpoint and ((step + 1) % checkpoint_every == 0 or step + 1 == cfg.steps):
            save_checkpoint(checkpoint, plain_cfg, step + 1, model, emb, opt, loss_ema, history,
                            spent_before + time.time() - t_start, cpu_before + time.process_time() - cpu_start)
    if bar is not None:
        bar.close()
    model.eval()
    with torch.no_grad():
        model.token_embedding.weight.copy_(emb.write_back(full_init))
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    info = dict(
        config=plain_cfg,
        model_config=mcfg,
        seconds=round(spent_before + time.time() - t_start, 1),
        cpu_seconds=round(cpu_before + time.process_time() - cpu_start, 1),  # --threads 1: ~ wall time, idle core
        final_loss=round(float(loss_ema), 4) if loss_ema is not None else None,
        trained_token_ids=used.tolist(),
        history=history,
        threads=torch.get_num_threads(),
    )
    return state, info


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def save_state_dict(state: Dict[str, torch.Tensor], path: str) -> str:
    """Save a plain fp32 state dict that ``clip.load(path, jit=False)`` accepts (atomic write)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save({k: v.contiguous() for k, v in state.items()}, tmp)
    os.replace(tmp, path)
    return path
