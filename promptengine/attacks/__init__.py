"""The shared attack core: one threat-model record (``AttackSpec``) and one entry point (``attack``).

    spec = parse_spec("pgd:steps=100,eps=4")            # or train_spec(cfg) / test_specs(cfg)
    x_adv = attack(model, images, labels, spec, sample_ids=indices)

Images are [0, 1] tensors, the model normalises inside, eps/alpha are /255 in configs and spec strings.
See docs/ATTACKS.md.
"""

from .pgd import attack, attack_outcome, eval_mode, mix_seed
from .spec import AttackSpec, from_255, parse_spec, test_specs, train_spec

__all__ = ["AttackSpec", "attack", "attack_outcome", "eval_mode", "mix_seed", "from_255", "parse_spec", "test_specs",
           "train_spec"]
