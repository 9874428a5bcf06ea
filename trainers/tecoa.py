"""TeCoA (Mao et al., ICLR 2023): adversarial fine-tuning of CLIP's vision tower for zero-shot robustness.

Cross-entropy on PGD examples made against the current tower (the shared ``TeCoAObjective``), with frozen class
text features from one hand-crafted template. ``TRAINER.TECOA.TUNE`` picks the whole vision tower or its last
``LAST_N`` blocks. With ``EXPORT`` every checkpoint also writes ``<OUTPUT_DIR>/vision_encoder.pth.tar``: the whole
tuned tower under ``vision_encoder_state_dict``, the key of TeCoA's released files, so ``MODEL.BACKBONE.PATH`` loads
it (and the released files) for APT/CAPT on a robust backbone. Scope, checkpointing and export: ``tower.TowerTuning``.
"""

from __future__ import annotations

from promptengine.registry import TRAINER_REGISTRY

from .objectives import TeCoAObjective
from .tower import VISION_ENCODER_FILE, TowerTuning, tower_cfg_node, tower_domains

EXPORT_NAME = VISION_ENCODER_FILE


@TRAINER_REGISTRY.register()
class TeCoA(TowerTuning, TeCoAObjective):
    script_folder, default_config = "tecoa", "vit_b32_eps1"
    tower_node = "TECOA"
    config_domains = tower_domains("TECOA")

    @staticmethod
    def extend_cfg(cfg) -> None:
        cfg.TRAINER.TECOA = tower_cfg_node()
