"""Class prompts as token embeddings with a slot for learnable context (CoOp's prompt layout).

The prompt text is ``"<prefix> <classname>."``: the first ``n_ctx`` tokens after SOT are the learnable
slot (initialised from ``ctx_init`` when given, else placeholders), the rest of the prefix stays fixed
(so MaPLe/FAP's "a photo of a" with 2 context tokens learns "a photo" and keeps "of a").
With ``n_ctx == 0`` the prompts are fixed hand-crafted templates.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from ..errors import UserError
from .backbone import PromptableCLIP

POSITIONS = ("end", "middle", "front")


def clean_classname(name: str) -> str:
    return name.replace("_", " ")


class ClassPrompts(nn.Module):
    """Fixed token embeddings of the class prompts, and assembly of learnable context into them."""

    def __init__(
        self,
        backbone: PromptableCLIP,
        classnames: Sequence[str],
        n_ctx: int = 0,
        ctx_init: str = "",
        position: str = "end",
        template: str = "a photo of a {}.",
    ) -> None:
        super().__init__()
        if position not in POSITIONS:
            raise UserError(f"CLASS_TOKEN_POSITION must be one of {'/'.join(POSITIONS)}, got '{position}'")
        names = [clean_classname(c) for c in classnames]
        self.n_ctx = n_ctx
        self.position = position
        if n_ctx == 0:
            texts = [template.format(n) for n in names]
            self.prefix_text = ""
        else:
            init_words = ctx_init.replace("_", " ").strip()
            n_init = (backbone.tokenize([init_words]).argmax(-1).item() - 1) if init_words else 0
            # the slot holds n_ctx tokens: the first n_ctx tokens of ctx_init, padded with placeholders
            pad = " ".join(["X"] * max(0, n_ctx - n_init))
            self.prefix_text = " ".join(t for t in (init_words, pad) if t)
            texts = [f"{self.prefix_text} {n}." for n in names]
        tokens = backbone.tokenize(texts)  # (K, 77)
        with torch.no_grad():
            emb = backbone.embed_tokens(tokens).float()  # (K, 77, Dt)
        self.register_buffer("tokens", tokens, persistent=False)
        self.register_buffer("embeddings", emb, persistent=False)
        self.register_buffer("eot_index", tokens.argmax(dim=-1), persistent=False)
        name_lens = [backbone.tokenize([n]).argmax(-1).item() - 1 for n in names]
        self.register_buffer("name_lens", torch.tensor(name_lens), persistent=False)
        self.init_ctx = emb[0, 1 : 1 + n_ctx].clone() if (n_ctx and ctx_init) else None  # (n_ctx, Dt)
        self.n_init_tokens = min(n_init, n_ctx) if n_ctx else 0

    @property
    def num_classes(self) -> int:
        return self.tokens.shape[0]

    def assemble(self, ctx: torch.Tensor | None) -> torch.Tensor:
        """Insert context (n_ctx, Dt) or (K, n_ctx, Dt) into the prompts -> (K, 77, Dt)."""
        if ctx is None or self.n_ctx == 0:
            return self.embeddings
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(self.num_classes, -1, -1)  # (K, n_ctx, Dt)
        emb = self.embeddings.to(ctx.dtype)
        prefix, suffix = emb[:, :1], emb[:, 1 + self.n_ctx :]  # SOT | class tokens, ".", EOT, padding
        if self.position == "end":
            return torch.cat([prefix, ctx, suffix], dim=1)
        rows: List[torch.Tensor] = []
        half = self.n_ctx // 2
        for k in range(self.num_classes):
            n = int(self.name_lens[k])
            name, rest = suffix[k : k + 1, :n], suffix[k : k + 1, n:]
            c = ctx[k : k + 1]
            if self.position == "front":
                rows.append(torch.cat([prefix[k : k + 1], name, c, rest], dim=1))
            else:
                rows.append(torch.cat([prefix[k : k + 1], c[:, :half], name, c[:, half:], rest], dim=1))
        return torch.cat(rows, dim=0)
