#!/usr/bin/env python
"""Pretrain SynthCLIP (a tiny OpenAI-architecture CLIP) on the synthetic worlds.

    python tools/pretrain_synth_clip.py --out synthclip.pt      # full state dict for clip.load
    python tools/pretrain_synth_clip.py --export                 # regenerate the shipped artifact
    python tools/pretrain_synth_clip.py --steps 5 --batch-size 16 --out /tmp/t.pt   # smoke test

The default run (1,500 steps x 160 images) takes an estimated 5 minutes on 2 idle CPU cores, about
8.5 minutes on one (``--threads 1``, the better choice on a busy machine), and is deterministic: on
one machine (same torch build and thread count) the same flags give the same weights bit for bit.
``--threads 1 --export`` regenerates the shipped artifact. ``--out`` writes a
plain fp32 state dict that ``clip.load(path, jit=False)`` loads; ``--export`` writes the compact
artifact ``promptengine/synth/assets/synthclip.pt`` (what ``synth_clip_path()`` expands) together
with the zero-shot accuracy it reached. See docs/SYNTH.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings


def parse_args(argv=None):
    from promptengine.synth.pretrain import PretrainConfig

    d = PretrainConfig()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="", help="write the full fp32 state dict here")
    ap.add_argument("--export", action="store_true", help="write the compact artifact shipped in the repository")
    ap.add_argument("--export-path", default="", help="where --export writes (default: the shipped artifact path)")
    ap.add_argument("--steps", type=int, default=d.steps)
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--width", type=int, default=0, help="vision width (multiple of 64); 0 = default")
    ap.add_argument("--text-width", type=int, default=0, help="text width (multiple of 64); 0 = default")
    ap.add_argument("--layers", type=int, default=0, help="layers of each tower; 0 = default")
    ap.add_argument("--patch", type=int, default=0, help="vision patch size (divides 32); 0 = default")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--eval-every", type=int, default=0, help="print SynthShapes val zero-shot every N steps")
    ap.add_argument("--checkpoint", default="",
                    help="save the training state here every 250 steps and resume from it if it exists "
                         "(same weights as an uninterrupted run); removed once the outputs are written")
    ap.add_argument("--no-eval", action="store_true", help="skip the final zero-shot evaluation")
    ap.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    import torch

    from promptengine.errors import UserError
    from promptengine.synth import weights as W
    from promptengine.synth.pretrain import PretrainConfig, pretrain, save_state_dict, zero_shot_accuracy
    from promptengine.synth.worlds import WORLDS

    if not args.out and not args.export:
        print("error: nothing to write: pass --out PATH and/or --export", file=sys.stderr)
        return 2
    cfg = PretrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed, threads=args.threads)
    if args.width:
        cfg.model["vision_width"] = args.width
        cfg.model["embed_dim"] = max(cfg.model["embed_dim"], 64)
    if args.text_width:
        cfg.model["transformer_width"] = args.text_width
    if args.patch:
        if 32 % args.patch:
            print(f"error: --patch {args.patch} does not divide the 32-pixel input; use 2, 4, 8 or 16", file=sys.stderr)
            return 2
        cfg.model["vision_patch_size"] = args.patch
    if args.layers:
        cfg.model["vision_layers"] = args.layers
        cfg.model["transformer_layers"] = args.layers
    t0 = time.time()
    try:
        state, info = pretrain(cfg, progress=not args.no_progress, eval_every=args.eval_every,
                               checkpoint=args.checkpoint)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"pretraining: {info['seconds']:.1f} s, {cfg.steps} steps x {cfg.batch_size} images, final loss {info['final_loss']}")

    if not args.no_eval:
        from promptengine.clip.openai_clip import build_model

        model = build_model(dict(state)).float().eval()  # exactly what clip.load builds
        acc = {}
        for name in WORLDS:
            acc[name] = round(zero_shot_accuracy(model, name, "test"), 2)
        info["zero_shot_test"] = acc
        print("zero-shot test accuracy: " + ", ".join(f"{k} {v:.1f}%" for k, v in acc.items()))
    info["torch"] = str(torch.__version__)
    info["command"] = " ".join(["python tools/pretrain_synth_clip.py", *(sys.argv[1:] if argv is None else argv)])
    info["total_seconds"] = round(time.time() - t0, 1)

    if args.out:
        save_state_dict(state, args.out)
        print(f"wrote {args.out} (load with clip.load(path, jit=False))")
    if args.export:
        path = args.export_path or W.ASSET_PATH
        compact = W.compact_state(state, info["model_config"], meta=info)
        W.save_compact(compact, path)
        with open(os.path.splitext(path)[0] + ".json", "w") as f:
            json.dump(info, f, indent=2)
        print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB) and its .json summary")
    if args.checkpoint and os.path.isfile(args.checkpoint):
        os.remove(args.checkpoint)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
