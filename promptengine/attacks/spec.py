"""The threat model as one frozen record (``AttackSpec``), built from config keys or short spec strings.

Units. Config values (``ATTACK.*.EPS/ALPHA``, ``ATTACK.PGD.EPS/ALPHA``) and spec strings (``pgd:eps=4``) give the
budget and step size in /255 pixel units; ``AttackSpec`` holds them in [0, 1] pixel units. ``from_255`` below is the
only place where that conversion happens. Images are [0, 1] tensors and the model normalises inside its forward.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import UserError
from .library import library_version
from .losses import REFERENCE_LOSSES

METHODS = ("pgd", "autoattack")
NORMS = ("linf", "l2")
KEEPS = ("fooled", "last")
THROUGH = ("model", "defense")  # what an attack on a test-time defense differentiates through
AA_VERSIONS = ("standard", "plus", "rand", "custom")
AA_ATTACK_NAMES = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")
# What pyautoattack 0.2.0 runs for each named version (``AutoAttack._set_version``); recorded in result files.
AA_VERSION_ATTACKS = {
    "standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
    "plus": ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"),
    "rand": ("apgd-ce", "apgd-dlr"),
}

_ALIASES = {
    "method": {"pgd": "pgd", "autoattack": "autoattack", "aa": "autoattack"},
    "norm": {"linf": "linf", "l_inf": "linf", "inf": "linf", "l2": "l2", "l_2": "l2"},
    "loss": {"ce": "ce", "xent": "ce", "kl": "kl", "trades": "kl", "cw": "cw", "margin": "cw",
             "embed": "embed", "embedding": "embed", "l2emb": "embed"},
}

# Train / test default step sizes when ALPHA is -1 (APT: 2/3*eps for the PGD-3 training attack, eps/4 for PGD-100).
TRAIN_ALPHA_FRACTION = 2.0 / 3.0
TEST_ALPHA_FRACTION = 0.25


def from_255(value: float) -> float:
    """/255 pixel units (config, spec strings) -> [0, 1] pixel units (``AttackSpec``). The only conversion."""
    return float(value) / 255.0


def fmt_255(value: float) -> str:
    """A [0, 1]-unit value written in /255 units with at most 3 decimals: 4/255 -> '4', 2/3*4/255 -> '2.667'."""
    text = f"{value * 255.0:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


@dataclass(frozen=True)
class AttackSpec:
    """One attack, fully specified. ``eps``/``alpha`` are in [0, 1] pixel units (already divided by 255).

    ``keep`` (PGD): "fooled" returns, per sample, the first misclassified iterate (the clean point counts as iterate
    -1), else the last iterate of the highest-loss restart: the per-sample worst case an evaluation wants. "last"
    returns the last iterate of the highest-loss restart, as the APT/FAP training attacks do. The KL and embedding
    losses have no success notion and always behave as "last".
    ``aa_iters`` (AutoAttack): 0 = the library's iteration counts (100); > 0 overrides APGD/FAB iterations (quick
    checks only; the label shows it).

    Adaptive attacks on a test-time defense (``promptengine.evaluation.testtime``): ``through`` "model" crafts on the
    undefended model (non-adaptive; any classifier that is no defense is its own model), "defense" through the
    defense's adaptation, unrolled for ``unroll`` steps (-1 all, 0 = BPDA: adaptation straight-through), with the
    loss averaged over ``eot`` draws of the defense's randomness (EOT). On a model without a defense every
    choice is plain PGD.
    """

    method: str = "pgd"
    norm: str = "linf"
    eps: float = 1 / 255
    alpha: float = 1 / 255
    steps: int = 10
    restarts: int = 1
    random_start: bool = True
    loss: str = "ce"
    aa_version: str = "standard"
    aa_attacks: tuple = ("apgd-ce", "apgd-dlr")
    seed: int = 0
    keep: str = "fooled"
    aa_iters: int = 0
    through: str = "model"
    unroll: int = -1
    eot: int = 1

    def __post_init__(self) -> None:
        values = _validated(asdict(self), key=lambda f: f"AttackSpec.{f}", units="01")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ records
    @property
    def aa_effective_attacks(self) -> Tuple[str, ...]:
        """The attacks AutoAttack actually runs (the version's list, or ``aa_attacks`` for "custom")."""
        if self.aa_version == "custom":
            return tuple(self.aa_attacks)
        return AA_VERSION_ATTACKS[self.aa_version]

    def label(self) -> str:
        """Short unambiguous text, e.g. 'pgd100, linf, eps=1/255, alpha=0.25/255'."""
        eps = f"eps={fmt_255(self.eps)}/255"
        if self.method == "autoattack":
            name = f"autoattack-{self.aa_version}"
            if self.aa_version == "custom":
                name += f"({'+'.join(self.aa_attacks)})"
            parts = [name, self.norm, eps]
            if self.aa_iters:
                parts.append(f"iters={self.aa_iters}")
            return ", ".join(parts)
        name = f"pgd{self.steps}" + ("" if self.loss == "ce" else f"-{self.loss}")
        parts = [name, self.norm, eps, f"alpha={fmt_255(self.alpha)}/255"]
        if self.restarts > 1:
            parts.append(f"restarts={self.restarts}")
        if not self.random_start:
            parts.append("no random start")
        if self.keep == "last" and self.loss not in REFERENCE_LOSSES:
            parts.append("last iterate")
        if self.through == "defense":
            parts.insert(0, "bpda" if self.unroll == 0 else (
                "adaptive" + ("" if self.unroll < 0 else f"(unroll={self.unroll})")))
            if self.eot > 1:
                parts.insert(1, f"eot{self.eot}")
        return ", ".join(parts)

    def to_dict(self) -> Dict[str, Any]:
        """The fields that apply to this method, for result files (next to ``label()``, which is stored apart).

        eps/alpha are in [0, 1] units; no derived keys, so records that differ only in the budget compare equal
        once eps and alpha are dropped (the reporting's accuracy-vs-eps families rely on that).
        """
        out: Dict[str, Any] = {"method": self.method, "norm": self.norm, "eps": self.eps}
        if self.method == "autoattack":
            out.update(aa_version=self.aa_version, aa_attacks=list(self.aa_effective_attacks),
                       aa_iters=self.aa_iters, seed=self.seed, library="pyautoattack",
                       library_version=library_version())
            return out
        out.update(alpha=self.alpha, steps=self.steps, restarts=self.restarts, random_start=self.random_start,
                   loss=self.loss, keep=self.keep, seed=self.seed)
        if self.through == "defense":  # only adaptive records carry the keys: older records stay equal
            out.update(through=self.through, unroll=self.unroll, eot=self.eot)
        return out


# ---------------------------------------------------------------------- validation
def _validated(v: Dict[str, Any], key: Callable[[str], str], units: str) -> Dict[str, Any]:
    """Check and normalise field values; every problem is a one-line UserError naming ``key(field)`` and the fix.

    ``units`` is "01" when eps/alpha are given in [0, 1] units (``AttackSpec``), "255" when the user wrote them in
    /255 units (config, spec strings); the values in ``v`` are always [0, 1] units.
    """
    v = dict(v)
    for name in ("method", "norm", "loss"):
        raw = v[name]
        canon = _ALIASES[name].get(str(raw).strip().lower()) if isinstance(raw, str) else None
        if canon is None:
            choices = ", ".join(dict.fromkeys(_ALIASES[name].values()))
            raise UserError(f"unknown {name} {raw!r} for {key(name)}; use one of: {choices}")
        v[name] = canon

    def shown(x: float) -> str:
        return f"{fmt_255(x)}/255" if units == "255" else repr(x)

    unit_text = "in /255 pixel units, e.g. 4 for 4/255" if units == "255" else "in [0, 1] pixel units, e.g. 4/255"
    for name in ("eps", "alpha"):
        x = v[name]
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise UserError(f"{key(name)} must be a finite number {unit_text} (got {x!r})")
        if x < 0:
            raise UserError(f"{key(name)} must be >= 0 (got {shown(x)}); give it {unit_text}")
        v[name] = float(x)
    if v["norm"] == "linf" and v["eps"] > 1.0:
        fix = "the value is in /255 units and at most 255" if units == "255" else (
            f"AttackSpec holds [0, 1] units: write eps={v['eps']:g}/255")
        raise UserError(f"{key('eps')} = {shown(v['eps'])} exceeds the whole [0, 1] pixel range; {fix}")

    for name, low in (("steps", 0), ("restarts", 1), ("aa_iters", 0), ("seed", None), ("unroll", -1), ("eot", 1)):
        x = v[name]
        if isinstance(x, float) and x.is_integer():
            x = int(x)
        if isinstance(x, bool) or not isinstance(x, int):
            raise UserError(f"{key(name)} must be an integer (got {x!r})")
        if low is not None and x < low:
            raise UserError(f"{key(name)} must be >= {low} (got {x})")
        v[name] = x
    if not isinstance(v["random_start"], bool):
        raise UserError(f"{key('random_start')} must be True or False (got {v['random_start']!r})")
    if v["through"] not in THROUGH:
        raise UserError(f"unknown target {v['through']!r} for {key('through')}; use one of: {', '.join(THROUGH)}")
    if v["method"] == "autoattack" and v["through"] != "model":
        raise UserError(f"{key('through')} = defense is a PGD attack; use through:, bpda: or eot: spec strings")
    if v["keep"] not in KEEPS:
        raise UserError(f"unknown keep mode {v['keep']!r} for {key('keep')}; use one of: {', '.join(KEEPS)}")
    if v["method"] == "pgd" and v["restarts"] > 1 and not v["random_start"]:
        raise UserError(f"{key('restarts')} = {v['restarts']} needs a random start (restarts from the clean image "
                        f"repeat the same attack); turn the random start on or use one restart")

    version = str(v["aa_version"]).strip().lower()
    if version not in AA_VERSIONS:
        raise UserError(f"unknown AutoAttack version {v['aa_version']!r} for {key('aa_version')}; use one of: "
                        f"{', '.join(AA_VERSIONS)}")
    v["aa_version"] = version
    attacks = v["aa_attacks"]
    if isinstance(attacks, str):
        attacks = [a for a in attacks.replace("+", ",").split(",") if a.strip()]
    attacks = tuple(str(a).strip().lower() for a in attacks)
    bad = [a for a in attacks if a not in AA_ATTACK_NAMES]
    if bad or not attacks or len(set(attacks)) != len(attacks):
        raise UserError(f"{key('aa_attacks')} {list(attacks)!r} must be distinct names from: "
                        f"{', '.join(AA_ATTACK_NAMES)}")
    v["aa_attacks"] = attacks
    return v


# ---------------------------------------------------------------------- from config
_CFG_KEYS = {"method": "METHOD", "norm": "NORM", "eps": "EPS", "alpha": "ALPHA", "steps": "STEPS",
             "restarts": "RESTARTS", "random_start": "RANDOM_START", "loss": "LOSS", "aa_version": "AA_VERSION",
             "aa_attacks": "AA_ATTACKS", "aa_iters": "STEPS"}


def _make(values: Dict[str, Any], key: Callable[[str], str]) -> AttackSpec:
    names = {f.name for f in fields(AttackSpec)}
    full = {**{f.name: f.default for f in fields(AttackSpec)}, **{k: v for k, v in values.items() if k in names}}
    return AttackSpec(**_validated(full, key=key, units="255"))


def _section_spec(cfg, section: str, alpha_fraction: float, keep: str) -> AttackSpec:
    node = cfg.ATTACK[section]

    def key(f: str) -> str:
        return f"ATTACK.{section}.{_CFG_KEYS.get(f, f.upper())}"

    if node.ALPHA != -1 and node.ALPHA < 0:
        raise UserError(f"{key('alpha')} must be >= 0 in /255 units, or -1 for the default "
                        f"({'2/3*EPS' if section == 'TRAIN' else 'EPS/4'}) (got {node.ALPHA})")
    if node.EPS < 0:
        raise UserError(f"{key('eps')} must be >= 0 in /255 pixel units, e.g. 4 for 4/255 (got {node.EPS})")
    eps = from_255(node.EPS)
    alpha = eps * alpha_fraction if node.ALPHA == -1 else from_255(node.ALPHA)
    _warn_tiny_eps(key("eps"), node.EPS)
    method = _ALIASES["method"].get(str(node.METHOD).strip().lower(), node.METHOD)
    values = dict(method=method, norm=node.NORM, eps=eps, alpha=alpha, restarts=node.RESTARTS,
                  random_start=node.RANDOM_START, loss=node.LOSS, aa_version=node.AA_VERSION,
                  aa_attacks=tuple(node.AA_ATTACKS), keep=keep)
    if method == "autoattack":
        values["aa_iters"] = node.STEPS
    else:
        values["steps"] = node.STEPS
    return _make(values, key)


def _warn_tiny_eps(key: str, eps_255: float) -> None:
    if 0 < eps_255 < 0.05:
        warnings.warn(f"{key} = {eps_255} is in /255 units (= {eps_255 / 255:.2e} in [0, 1] pixels); "
                      f"did you mean {eps_255 * 255:g}?", stacklevel=4)


def train_spec(cfg) -> Optional[AttackSpec]:
    """The training attack, or None (``ATTACK.TRAIN.ENABLED`` False or ``STEPS`` 0).

    FAP's ``ATTACK.PGD.*`` keys arrive here already translated into ``ATTACK.TRAIN`` by the config loader
    (``promptengine.config.upstream``). Training attacks keep the last iterate.
    """
    node = cfg.ATTACK.TRAIN
    if not node.ENABLED or node.STEPS == 0:
        return None
    if str(node.METHOD).strip().lower() in ("autoattack", "aa"):
        raise UserError("ATTACK.TRAIN.METHOD 'autoattack' is an evaluation attack; use pgd for training "
                        "(ATTACK.TRAIN.METHOD pgd)")
    return _section_spec(cfg, "TRAIN", TRAIN_ALPHA_FRACTION, keep="last")


def test_specs(cfg) -> List[AttackSpec]:
    """Every test attack, in order, without duplicates: ``ATTACK.TEST`` when enabled (``STEPS`` > 0, or METHOD
    autoattack), then each ``ATTACK.TEST.ATTACKS`` string (FAP's PGD-TEST_ITER arrives translated into these)."""
    specs: List[AttackSpec] = []
    node = cfg.ATTACK.TEST
    is_aa = str(node.METHOD).strip().lower() in ("autoattack", "aa")
    if node.ENABLED and (is_aa or node.STEPS != 0):
        specs.append(_section_spec(cfg, "TEST", TEST_ALPHA_FRACTION, keep="fooled"))
    for i, text in enumerate(node.ATTACKS):
        specs.append(parse_spec(text, where=f"ATTACK.TEST.ATTACKS[{i}]"))
    return list(dict.fromkeys(specs))


# ---------------------------------------------------------------------- spec strings
_PGD_KEYS = ("steps", "eps", "alpha", "norm", "loss", "restarts", "random_start", "seed", "keep")
# Adaptive kinds (PGD through a test-time defense) and the keys each adds to PGD's.
_ADAPTIVE_KEYS = {"through": ("unroll", "samples"), "eot": ("unroll", "samples"), "bpda": ("samples",)}
_AA_KEYS = ("version", "attacks", "eps", "norm", "seed", "iters")
_KEY_ALIASES = {"rs": "random_start", "n_restarts": "restarts", "iter": "steps", "iterations": "steps"}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_spec(text: str, where: str = "") -> AttackSpec:
    """Parse 'pgd:steps=100,eps=4,alpha=1,norm=linf,loss=ce,restarts=2', 'cw:steps=30,eps=1',
    'aa:version=standard,eps=4' or 'aa:attacks=apgd-ce+apgd-dlr,eps=1' (eps/alpha in /255 units).
    Adaptive PGD through a test-time defense: 'through:steps=10,unroll=2' (unroll -1 = every adaptation step),
    'eot:samples=8' (EOT; through every step unless unroll=), 'bpda:steps=10' (adaptation straight-through).

    Defaults: PGD uses steps 10, eps 1, alpha eps/4, linf, CE, one random start; AutoAttack uses the standard version.
    """
    src = f"attack spec {text!r}" + (f" ({where})" if where else "")
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"empty {src}; write e.g. 'pgd:steps=100,eps=4' or 'aa:version=standard,eps=4'")
    kind, _, rest = text.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in ("pgd", "cw", "aa", "autoattack", *_ADAPTIVE_KEYS):
        raise UserError(f"unknown attack '{kind}' in {src}; start with pgd:, cw:, aa:, through:, eot: or bpda:")
    is_aa = kind in ("aa", "autoattack")
    allowed = _AA_KEYS if is_aa else _PGD_KEYS + _ADAPTIVE_KEYS.get(kind, ())
    items: Dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        name = "iters" if is_aa and name in ("steps", "iter", "iterations") else _KEY_ALIASES.get(name, name)
        if not eq or not value.strip():
            raise UserError(f"'{part}' in {src} is not KEY=VALUE; write e.g. eps=4")
        if name not in allowed:
            raise UserError(f"unknown key '{name}' in {src}; valid keys for {kind}: {', '.join(allowed)}")
        if name in items:
            raise UserError(f"key '{name}' given twice in {src}; keep one")
        items[name] = value.strip()

    def key(f: str) -> str:
        shown = {"aa_version": "version", "aa_attacks": "attacks", "aa_iters": "iters"}.get(f, f)
        return f"{shown} in {src}"

    def number(name: str, cast: type) -> Any:
        try:
            value = float(items[name])
        except ValueError:
            raise UserError(f"{key(name)} must be a number (got {items[name]!r})") from None
        if cast is int:
            if not value.is_integer():
                raise UserError(f"{key(name)} must be an integer (got {items[name]!r})")
            return int(value)
        return value

    values: Dict[str, Any] = {}
    eps_255 = number("eps", float) if "eps" in items else 1.0
    if eps_255 < 0:
        raise UserError(f"{key('eps')} must be >= 0 in /255 pixel units, e.g. eps=4 (got {items['eps']})")
    values["eps"] = from_255(eps_255)
    if "norm" in items:
        values["norm"] = items["norm"]
    if "seed" in items:
        values["seed"] = number("seed", int)
    if is_aa:
        values["method"] = "autoattack"
        if "iters" in items:
            values["aa_iters"] = number("iters", int)
        version = items.get("version", "").lower()
        if "attacks" in items:
            if version not in ("", "custom"):
                raise UserError(f"{src} gives attacks= with version={version}; a subset needs version=custom "
                                f"(or drop version=)")
            values["aa_version"] = "custom"
            values["aa_attacks"] = items["attacks"]
        elif version:
            values["aa_version"] = version
            if version == "custom":
                raise UserError(f"version=custom in {src} needs attacks=, e.g. attacks=apgd-ce+apgd-dlr")
        return _make(values, key)

    values["method"] = "pgd"
    for name in ("steps", "restarts"):
        if name in items:
            values[name] = number(name, int)
    values["alpha"] = from_255(number("alpha", float)) if "alpha" in items else values["eps"] * TEST_ALPHA_FRACTION
    if "random_start" in items:
        flag = items["random_start"].lower()
        if flag not in _TRUE + _FALSE:
            raise UserError(f"{key('random_start')} must be true or false (got {items['random_start']!r})")
        values["random_start"] = flag in _TRUE
    if "keep" in items:
        values["keep"] = items["keep"].lower()
    if "loss" in items:
        values["loss"] = items["loss"]
    if kind in _ADAPTIVE_KEYS:
        values["through"] = "defense"
        values["unroll"] = 0 if kind == "bpda" else (number("unroll", int) if "unroll" in items else -1)
        values["eot"] = number("samples", int) if "samples" in items else (8 if kind == "eot" else 1)
    if kind == "cw":
        if _ALIASES["loss"].get(str(values.get("loss", "cw")).lower()) != "cw":
            raise UserError(f"{src} is a CW attack; drop loss= or use pgd:loss=...")
        values["loss"] = "cw"
    return _make(values, key)
