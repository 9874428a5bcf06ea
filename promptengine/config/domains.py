"""Declared domains of config values, checked once after merging and before any data or model is built.

Every numeric and enumerated key gets a ``Domain``: its type, range, allowed values and special values
(``-1 = all``, ``0 = off``). ``check_cfg`` walks them all and raises one ``UserError`` line naming the key,
the value, the allowed domain and where the value came from (default, a YAML file or the command line).
It is the only validator of single values: ``build_cfg``, a report's rebuilt config and the Dassl plug-in all run
it (trainers' ``check_cfg`` keeps only what no domain can say, e.g. "this method needs a training attack").
``RULES`` are checks across keys (e.g. a test attack with step size 0); they either raise or return a
one-line warning for values that are legal but almost certainly a mistake.

Trainers declare the domains of their own keys next to ``extend_cfg`` in a class attribute
``config_domains = {"TRAINER.X.KEY": Int(0), ...}``; ``declared_domains`` collects them.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

from ..errors import UserError
from ..registry import TRAINER_REGISTRY

Provenance = Mapping[str, str]


@dataclass(frozen=True)
class Domain:
    """The allowed values of one key. ``kind``: int | float | choice | seq (each element in ``item``)."""

    kind: str
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False  # low itself excluded
    special: Tuple[Any, ...] = ()  # allowed outside the range, with their meaning in ``meaning``
    choices: Tuple[str, ...] = ()
    meaning: str = ""
    item: Optional[Domain] = None  # seq: the domain of every element
    length: Optional[int] = None  # seq: the required number of elements
    ignore_case: bool = False  # choice: compared after strip().lower() (the attack keys' aliases)

    def accepts(self, value: Any) -> bool:
        if self.kind == "seq":
            if not isinstance(value, (list, tuple)) or (self.length is not None and len(value) != self.length):
                return False
            return all(self.item.accepts(v) for v in value)
        if self.kind == "choice":
            if not isinstance(value, str):
                return False
            return (value.strip().lower() if self.ignore_case else value) in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        if value in self.special:
            return True
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "seq":
            count = f"{self.length} " if self.length else ""
            return f"a list of {count}values, each {self.item.describe()}"
        noun = "an integer" if self.kind == "int" else "a finite number"
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {_num(self.low)}")
        if self.high is not None:
            bounds.append(f"<= {_num(self.high)}")
        text = f"{noun} {' and '.join(bounds)}".rstrip()
        if self.special:
            text += ", or " + " or ".join(_num(s) for s in self.special)
        return text + (f" ({self.meaning})" if self.meaning else "")


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def Int(low: Optional[int] = None, high: Optional[int] = None, special: Tuple[int, ...] = (), meaning: str = "") -> Domain:
    return Domain("int", low, high, special=special, meaning=meaning)


def Real(low: Optional[float] = None, high: Optional[float] = None, low_open: bool = False,
         special: Tuple[float, ...] = (), meaning: str = "") -> Domain:
    return Domain("float", low, high, low_open=low_open, special=special, meaning=meaning)


def OneOf(*choices: str, meaning: str = "", ignore_case: bool = False) -> Domain:
    return Domain("choice", choices=tuple(choices), meaning=meaning, ignore_case=ignore_case)


def SeqOf(item: Domain, length: Optional[int] = None) -> Domain:
    return Domain("seq", item=item, length=length)


def Precision() -> Domain:
    """A trainer's ``PREC`` key (fp16 = fp16 autocast, see ``promptengine.engine.precision``)."""
    return OneOf("fp16", "fp32", "amp", "bf16")


# ---------------------------------------------------------------------------------------------- core keys
def _attack_domains(section: str) -> Dict[str, Domain]:
    from ..attacks.spec import _ALIASES, AA_VERSIONS  # deferred: the attacks package imports torch (config stays light)

    p = f"ATTACK.{section}."
    return {
        p + "METHOD": OneOf(*_ALIASES["method"], ignore_case=True),
        p + "NORM": OneOf(*_ALIASES["norm"], ignore_case=True),
        p + "EPS": Real(0, meaning="/255 pixel units, e.g. 4 for 4/255"),
        p + "ALPHA": Real(0, special=(-1.0,), meaning="/255 units; -1 = default step size"),
        p + "STEPS": Int(0, meaning="0 = attack off" if section == "TRAIN" else "0 = off for PGD"),
        p + "RESTARTS": Int(1),
        p + "LOSS": OneOf(*_ALIASES["loss"], ignore_case=True),
        p + "AA_VERSION": OneOf(*AA_VERSIONS),
        p + "PRECISION": OneOf("fp32", "bf16", "amp", "fp16", ignore_case=True,
                               meaning="the attack's own precision; fp32 unless you accept weaker attacks"),
    }


def attack_domains() -> Dict[str, Domain]:
    """``ATTACK.TRAIN/TEST.*`` (ours) and ``ATTACK.PGD.*`` (FAP's keys)."""
    return {
        **_attack_domains("TRAIN"),
        **_attack_domains("TEST"),
        "ATTACK.PGD.EPS": Real(0, meaning="/255 pixel units"),
        "ATTACK.PGD.ALPHA": Real(0, meaning="/255 pixel units"),
        "ATTACK.PGD.TRAIN_ITER": Int(0, meaning="0 = no training attack"),
        "ATTACK.PGD.TEST_ITER": Int(0, meaning="0 = no FAP test attack"),
        "ATTACK.PGD.LAMBDA_1": Real(0),
    }


def core_domains() -> Dict[str, Domain]:
    # deferred: these modules import torch/torchvision, and parsing a config (the sweep, the reports) needs neither
    from ..data.fewshot import SUBSAMPLE_CHOICES
    from ..data.transforms import INTERPOLATIONS
    from ..engine.optim import OPTIMIZERS, SCHEDULERS

    unit = Real(0, 1)
    return {
        "INPUT.SIZE": SeqOf(Int(1), length=2),
        "INPUT.INTERPOLATION": OneOf(*INTERPOLATIONS),
        "INPUT.CROP_PADDING": Int(0),
        "INPUT.RRCROP_SCALE": SeqOf(Real(0, 1, low_open=True), length=2),
        "INPUT.CUTOUT_N": Int(0),
        "INPUT.CUTOUT_LEN": Int(0),
        "INPUT.GN_STD": Real(0),
        "INPUT.RANDAUGMENT_N": Int(0),
        "INPUT.RANDAUGMENT_M": Int(0, 30),
        "INPUT.COLORJITTER_B": Real(0),
        "INPUT.COLORJITTER_C": Real(0),
        "INPUT.COLORJITTER_S": Real(0),
        "INPUT.COLORJITTER_H": Real(0, 0.5),
        "INPUT.RGS_P": unit,
        "INPUT.GB_P": unit,
        "INPUT.GB_K": Int(1),
        "DATASET.NUM_SHOTS": Int(1, special=(-1,), meaning="-1 = all images; 0 shots would leave nothing to train on"),
        "DATASET.VAL_PERCENT": unit,
        "DATASET.SUBSAMPLE_CLASSES": OneOf(*SUBSAMPLE_CHOICES),
        "DATALOADER.NUM_WORKERS": Int(0, meaning="0 = load in the main process"),
        "DATALOADER.K_TRANSFORMS": Int(1),
        "DATALOADER.TRAIN_X.BATCH_SIZE": Int(1),
        "DATALOADER.TEST.BATCH_SIZE": Int(1),
        "OPTIM.NAME": OneOf(*OPTIMIZERS),
        "OPTIM.LR": Real(0, low_open=True, meaning="0 would train nothing"),
        "OPTIM.WEIGHT_DECAY": Real(0),
        "OPTIM.MOMENTUM": unit,
        "OPTIM.SGD_DAMPNING": unit,
        "OPTIM.RMSPROP_ALPHA": unit,
        "OPTIM.ADAM_BETA1": Real(0, 1),
        "OPTIM.ADAM_BETA2": Real(0, 1),
        "OPTIM.BASE_LR_MULT": Real(0),
        "OPTIM.LR_SCHEDULER": OneOf(*SCHEDULERS),
        "OPTIM.STEPSIZE": SeqOf(Int(1, special=(-1, 0), meaning="<= 0 = MAX_EPOCH")),
        "OPTIM.GAMMA": Real(0, low_open=True),
        "OPTIM.MAX_EPOCH": Int(1),
        "OPTIM.WARMUP_EPOCH": Int(-1, meaning="-1 or 0 = no warm-up"),
        "OPTIM.WARMUP_TYPE": OneOf("constant", "linear"),
        "OPTIM.WARMUP_CONS_LR": Real(0),
        "OPTIM.WARMUP_MIN_LR": Real(0),
        "TRAIN.CHECKPOINT_FREQ": Int(0, meaning="0 = only the last epoch"),
        "TRAIN.PRINT_FREQ": Int(1),
        "TRAIN.NONFINITE": OneOf("stop", "skip"),
        "TRAIN.PRECISION": OneOf("", "fp32", "bf16", "amp", "fp16", meaning="'' = the trainer's PREC"),
        "TEST.SPLIT": OneOf("test", "val"),
        "TEST.MAX_IMAGES": Int(1, special=(-1,), meaning="-1 = all test images"),
        **attack_domains(),
    }


def declared_domains(trainer_classes: Optional[Iterable[type]] = None) -> Dict[str, Domain]:
    """The core domains plus the ``config_domains`` of the given trainers (default: every registered trainer)."""
    if trainer_classes is None:
        trainer_classes = [TRAINER_REGISTRY.get(name) for name in TRAINER_REGISTRY.registered_names()]
    out = core_domains()
    for cls in trainer_classes:
        out.update(getattr(cls, "config_domains", {}) or {})
    return out


# ---------------------------------------------------------------------------------------------- checking
def lookup(cfg, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def where(provenance: Provenance, key: str) -> str:
    return provenance.get(key, "the defaults")


class Unrecorded(Mapping):
    """Provenance of a config merged elsewhere (a Dassl ``train.py``): every key comes from ``source``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __getitem__(self, key: str) -> str:
        return self.source

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def domain_error(key: str, value: Any, domain: Domain, provenance: Provenance) -> UserError:
    return UserError(f"{key} = {value!r} (from {where(provenance, key)}) is not allowed: it must be "
                     f"{domain.describe()}; set {key} to such a value")


def check_cfg(cfg, domains: Mapping[str, Domain], provenance: Provenance) -> List[str]:
    """Raise a one-line ``UserError`` on the first value outside its domain or broken rule; return the warnings."""
    for key, domain in domains.items():
        try:
            value = lookup(cfg, key)
        except KeyError:
            continue  # a trainer that is not registered in this process
        if not domain.accepts(value):
            raise domain_error(key, value, domain, provenance)
    warnings: List[str] = []
    for rule in RULES:
        message = rule(cfg, provenance)
        if message:
            warnings.append(message)
    return warnings


def check_and_warn(cfg, domains: Mapping[str, Domain], provenance: Provenance) -> None:
    """``check_cfg`` with its warnings printed as ``warning:`` lines on stderr (stdout may be a config dump)."""
    for message in check_cfg(cfg, domains, provenance):
        print(f"warning: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------- rules across keys
Rule = Callable[[Any, Provenance], Optional[str]]
LARGE_EPS_255 = 64.0


def _pgd_sections(cfg) -> List[Tuple[str, str, float, float, int]]:
    """(name, alpha key, eps, alpha, steps) of every configured PGD attack section."""
    out = []
    for section in ("TRAIN", "TEST"):
        node = cfg.ATTACK[section]
        method = str(node.METHOD).strip().lower()
        if node.ENABLED and method == "pgd" and node.STEPS > 0:
            out.append((section, f"ATTACK.{section}.ALPHA", float(node.EPS), float(node.ALPHA), int(node.STEPS)))
    if cfg.ATTACK.PGD.USE:
        p = cfg.ATTACK.PGD
        if p.TRAIN_ITER > 0:
            out.append(("TRAIN", "ATTACK.PGD.ALPHA", float(p.EPS), float(p.ALPHA), int(p.TRAIN_ITER)))
        if p.TEST_ITER > 0:
            out.append(("TEST", "ATTACK.PGD.ALPHA", float(p.EPS), float(p.ALPHA), int(p.TEST_ITER)))
    return out


def zero_step_attack(cfg, provenance: Provenance) -> Optional[str]:
    """A PGD test attack with step size 0 never moves: its "robust accuracy" would be clean accuracy (error).
    The same in training is a warning (training on clean or randomly shifted images only)."""
    warning = None
    for section, alpha_key, eps, alpha, _ in _pgd_sections(cfg):
        if alpha != 0 or eps == 0:
            continue
        if section == "TEST":
            raise UserError(f"{alpha_key} = 0 (from {where(provenance, alpha_key)}) makes the PGD test attack take "
                            "steps of size 0, so its 'robust accuracy' would be clean accuracy; set the step size "
                            "> 0 (or -1 for the default EPS/4 in ATTACK.TEST) or disable the attack")
        warning = (f"{alpha_key} = 0 (from {where(provenance, alpha_key)}): the training attack takes steps of size 0 "
                   "and trains on unperturbed (or only randomly started) images")
    return warning


def large_eps(cfg, provenance: Provenance) -> Optional[str]:
    """An eps above 64/255 is almost always a unit mistake ([0, 1] vs /255) or a typo."""
    linf = [s for s in ("TRAIN", "TEST") if str(cfg.ATTACK[s].NORM).lower() not in ("l2", "l_2")]
    keys = [f"ATTACK.{s}.EPS" for s in linf if cfg.ATTACK[s].ENABLED]
    if cfg.ATTACK.PGD.USE:
        keys.append("ATTACK.PGD.EPS")
    for key in keys:
        eps = float(lookup(cfg, key))
        if eps > LARGE_EPS_255:
            return (f"{key} = {eps:g} (from {where(provenance, key)}) is larger than {LARGE_EPS_255:g}/255: eps is "
                    "in /255 pixel units (4 means 4/255); check the value")
    return None


def zero_eps_test(cfg, provenance: Provenance) -> Optional[str]:
    """A test attack with eps 0 reports clean accuracy under the name 'robust accuracy'."""
    node = cfg.ATTACK.TEST
    if node.ENABLED and node.STEPS > 0 and float(node.EPS) == 0:
        return (f"ATTACK.TEST.EPS = 0 (from {where(provenance, 'ATTACK.TEST.EPS')}): the test attack cannot change "
                "any image, so its robust accuracy equals the clean accuracy")
    return None


RULES: Tuple[Rule, ...] = (zero_step_attack, large_eps, zero_eps_test)
