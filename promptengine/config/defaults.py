"""Default config: the Dassl keys the CLIP family uses, plus the attack namespace.

Trainer subtrees (``TRAINER.COOP.*`` ...) are declared by each trainer's ``extend_cfg`` and added by
``build_cfg`` in ``promptengine.config.merge``.
"""

from __future__ import annotations

from yacs.config import CfgNode as CN


def get_cfg_default() -> CN:
    """A fresh default config (not frozen)."""
    _C = CN()
    _C.VERSION = 1
    _C.OUTPUT_DIR = "./output"
    _C.RESUME = ""
    _C.SEED = -1
    _C.USE_CUDA = True
    _C.VERBOSE = True
    _C.DETERMINISTIC = False  # torch.use_deterministic_algorithms + seeded loader workers

    _C.INPUT = CN()
    _C.INPUT.SIZE = (224, 224)
    _C.INPUT.INTERPOLATION = "bilinear"
    _C.INPUT.TRANSFORMS = ()
    _C.INPUT.NO_TRANSFORM = False
    # CLIP's values; normalisation happens once, inside the model. Other values are rejected (config/upstream.py).
    _C.INPUT.PIXEL_MEAN = [0.48145466, 0.4578275, 0.40821073]
    _C.INPUT.PIXEL_STD = [0.26862954, 0.26130258, 0.27577711]
    _C.INPUT.CROP_PADDING = 4
    _C.INPUT.RRCROP_SCALE = (0.08, 1.0)
    _C.INPUT.CUTOUT_N = 1
    _C.INPUT.CUTOUT_LEN = 16
    _C.INPUT.GN_MEAN = 0.0
    _C.INPUT.GN_STD = 0.15
    _C.INPUT.RANDAUGMENT_N = 2
    _C.INPUT.RANDAUGMENT_M = 10
    _C.INPUT.COLORJITTER_B = 0.4
    _C.INPUT.COLORJITTER_C = 0.4
    _C.INPUT.COLORJITTER_S = 0.4
    _C.INPUT.COLORJITTER_H = 0.1
    _C.INPUT.RGS_P = 0.2
    _C.INPUT.GB_P = 0.5
    _C.INPUT.GB_K = 21

    _C.DATASET = CN()
    _C.DATASET.ROOT = ""
    _C.DATASET.NAME = ""
    _C.DATASET.SOURCE_DOMAINS = ()
    _C.DATASET.TARGET_DOMAINS = ()
    _C.DATASET.NUM_LABELED = -1
    _C.DATASET.NUM_SHOTS = -1
    _C.DATASET.VAL_PERCENT = 0.1
    _C.DATASET.SUBSAMPLE_CLASSES = "all"
    _C.DATASET.FEWSHOT_CACHE_DIR = ""  # "" = $PROMPTENGINE_CACHE/fewshot or ~/.cache/promptengine/fewshot
    _C.DATASET.WRITE_SPLITS = False  # write generated split JSONs into the data root (off: roots are often read-only)

    _C.DATALOADER = CN()
    _C.DATALOADER.NUM_WORKERS = 4
    _C.DATALOADER.K_TRANSFORMS = 1
    _C.DATALOADER.RETURN_IMG0 = False
    _C.DATALOADER.TRAIN_X = CN()
    _C.DATALOADER.TRAIN_X.SAMPLER = "RandomSampler"
    _C.DATALOADER.TRAIN_X.BATCH_SIZE = 32
    _C.DATALOADER.TRAIN_X.N_DOMAIN = 0
    _C.DATALOADER.TRAIN_X.N_INS = 16
    _C.DATALOADER.TEST = CN()
    _C.DATALOADER.TEST.SAMPLER = "SequentialSampler"
    _C.DATALOADER.TEST.BATCH_SIZE = 32

    _C.MODEL = CN()
    _C.MODEL.INIT_WEIGHTS = ""
    _C.MODEL.BACKBONE = CN()
    _C.MODEL.BACKBONE.NAME = ""
    _C.MODEL.BACKBONE.PRETRAINED = True
    _C.MODEL.BACKBONE.ROBUST = False  # APT's key: a robust vision tower from PATH, or APT's backbone/<arch>_eps<E>.pth.tar
    _C.MODEL.BACKBONE.PATH = ""  # optional visual-tower weights (e.g. TeCoA) loaded over the CLIP vision encoder
    _C.MODEL.BACKBONE.DOWNLOAD_ROOT = ""  # "" = $CLIP_DOWNLOAD_ROOT or ~/.cache/clip
    _C.MODEL.HEAD = CN()
    _C.MODEL.HEAD.NAME = ""
    _C.MODEL.HEAD.HIDDEN_LAYERS = ()
    _C.MODEL.HEAD.ACTIVATION = "relu"
    _C.MODEL.HEAD.BN = True
    _C.MODEL.HEAD.DROPOUT = 0.0

    _C.OPTIM = CN()
    _C.OPTIM.NAME = "adam"
    _C.OPTIM.LR = 0.0003
    _C.OPTIM.WEIGHT_DECAY = 5e-4
    _C.OPTIM.MOMENTUM = 0.9
    _C.OPTIM.SGD_DAMPNING = 0.0
    _C.OPTIM.SGD_NESTEROV = False
    _C.OPTIM.RMSPROP_ALPHA = 0.99
    _C.OPTIM.ADAM_BETA1 = 0.9
    _C.OPTIM.ADAM_BETA2 = 0.999
    _C.OPTIM.STAGED_LR = False
    _C.OPTIM.NEW_LAYERS = ()
    _C.OPTIM.BASE_LR_MULT = 0.1
    _C.OPTIM.LR_SCHEDULER = "single_step"
    _C.OPTIM.STEPSIZE = (-1,)
    _C.OPTIM.GAMMA = 0.1
    _C.OPTIM.MAX_EPOCH = 10
    _C.OPTIM.WARMUP_EPOCH = -1
    _C.OPTIM.WARMUP_TYPE = "linear"
    _C.OPTIM.WARMUP_CONS_LR = 1e-5
    _C.OPTIM.WARMUP_MIN_LR = 1e-5
    _C.OPTIM.WARMUP_RECOUNT = True

    _C.TRAIN = CN()
    _C.TRAIN.CHECKPOINT_FREQ = 0
    _C.TRAIN.PRINT_FREQ = 10
    _C.TRAIN.COUNT_ITER = "train_x"
    _C.TRAIN.NONFINITE = "stop"  # stop | skip: what to do on a non-finite loss or gradient
    _C.TRAIN.PRECISION = ""  # "" = the trainer's PREC; else fp32 | bf16 | amp (fp16 autocast + scaler)

    _C.TEST = CN()
    _C.TEST.EVALUATOR = "Classification"
    _C.TEST.PER_CLASS_RESULT = False
    _C.TEST.COMPUTE_CMAT = False
    _C.TEST.NO_TEST = False
    _C.TEST.SPLIT = "test"
    _C.TEST.FINAL_MODEL = "last_step"
    _C.TEST.MAX_IMAGES = -1  # evaluate on the first N test images only (-1 = all)
    _C.TEST.ROBUST_EVAL_FREQ = 0  # > 0: clean and robust accuracy on the val split every N epochs (log + TensorBoard)
    _C.TEST.ROBUST_EVAL_IMAGES = 200  # the first N val images for that check (-1 = all)
    _C.TEST.DEFENSE = ""  # a test-time defense (a defense trainer's name) around any model; "none": no defense

    _C.TRAINER = CN()
    _C.TRAINER.NAME = ""

    _C.ATTACK = attack_defaults()
    return _C


def attack_defaults() -> CN:
    """``ATTACK.TRAIN`` / ``ATTACK.TEST`` (ours) and ``ATTACK.PGD`` (FAP's keys, mapped in one place).

    EPS and ALPHA are in /255 pixel units, images in [0, 1]; ``promptengine.attacks.spec`` converts them.
    """
    att = CN()
    for name, steps, enabled in (("TRAIN", 3, False), ("TEST", 0, False)):
        sub = CN()
        sub.ENABLED = enabled
        sub.METHOD = "pgd"  # pgd | autoattack
        sub.NORM = "linf"  # linf | l2
        sub.EPS = 1.0  # /255 units for linf; for l2 the raw L2 radius is EPS/255 too
        sub.ALPHA = -1.0  # /255 units; -1 = default (train: 2/3*eps, test: eps/4)
        sub.STEPS = steps
        sub.RESTARTS = 1
        sub.RANDOM_START = True
        sub.LOSS = "ce"  # ce | kl | cw | embed (a tower-embedding training attack)
        sub.AA_VERSION = "standard"  # autoattack: standard | plus | rand | custom (STEPS > 0 overrides APGD iters)
        sub.AA_ATTACKS = ("apgd-ce", "apgd-dlr")  # autoattack custom subset
        sub.PRECISION = "fp32"  # fp32 | bf16 | amp: the attack's forwards, independent of TRAIN.PRECISION
        setattr(att, name, sub)
    att.TEST.ATTACKS = ()  # extra test attacks as spec strings, e.g. ("pgd:steps=100,eps=1", "cw:steps=30")
    # FAP's namespace. When a YAML or opts set any of these keys (USE), the config loader translates them once into
    # ATTACK.TRAIN, a first PGD-TEST_ITER (CE) test attack and TRAINER.FAP.* (see promptengine.config.upstream).
    att.PGD = CN()
    att.PGD.EPS = 1.0
    att.PGD.ALPHA = 1.0
    att.PGD.TRAIN_ITER = 2
    att.PGD.TEST_ITER = 100
    att.PGD.ADV_TERM = "ce"
    att.PGD.LAMBDA_1 = 1.0
    att.PGD.USE = False  # set automatically when a YAML or opts set any ATTACK.PGD key
    return att
