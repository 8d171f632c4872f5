"""The paper configs' resolved recipes: every value the official code runs, as load_config gives it.

Each value is the official one, with where it was read (halbielee/EPS and kazuto1011/deeplab-pytorch
at their default branches; file:line). A change to the schema's defaults or to a config file that
moves a paper run off the official recipe fails here, naming the key.
"""

from __future__ import annotations

import pytest

from conftest import REPO
from wsss.config.load import load_config

# PASCAL VOC 2012: EPS's classifier (main.py's defaults, script/voc12_eps.sh), its inference (infer.py)
# and deeplab-pytorch's configs/voc12.yaml for DeepLab-v2.
VOC12 = {
    "dataset.source": "voc",
    "classifier.backbone": "resnet38d",                   # network/resnet38_eps.py
    "classifier.pretrained": "resources/weights/ilsvrc-cls_rna-a1_cls1000_ep-0001.params",  # voc12_eps.sh BASE_WEIGHT
    "classifier.tau": 0.4,                                # voc12_eps.sh --tau 0.4
    "classifier.lam": 0.5,                                # main.py:47 --lam default (voc12_eps.sh sets none)
    "classifier.train.iterations": 20000,                 # voc12_eps.sh --max_iters 20000
    "classifier.train.batch_size": 8,                     # voc12_eps.sh --batch_size 8
    "classifier.train.crop_size": 448,                    # voc12_eps.sh --crop_size 448
    "classifier.train.scale_range": [256, 512],           # main.py:32 --resize_size default (256, 512)
    "classifier.train.lr": 0.01,                          # main.py:40 --lr
    "classifier.train.weight_decay": 0.0005,              # main.py:42 --wt_dec
    # util/torchutils.py PolyOptimizer: SGD(params, lr, weight_decay) puts the decay in momentum's place,
    # and its own `momentum` 0.9 is the poly power
    "classifier.train.momentum": 0.0005,
    "classifier.train.poly_power": 0.9,
    "classifier.train.decay_iterations": None,            # PolyOptimizer max_step = max_iters
    "classifier.train.head_lr_mult": 10.0,                # module/optimizer.py: 10*lr, 20*lr for the head
    "classifier.train.bias_lr_mult": 2.0,                 # module/optimizer.py: 2*lr, no decay, for biases
    "classifier.train.bias_weight_decay": False,
    "classifier.train.resize_mode": "bicubic",            # util/imutils.py RandomResizeLong: PIL CUBIC
    "classifier.train.color_jitter": 0.3,                 # module/dataloader.py ColorJitter(0.3, 0.3, 0.3, hue=0.1)
    "classifier.train.hue_jitter": 0.1,
    "classifier.train.flip": True,                        # RandomHorizontalFlip
    "classifier.infer.scales": [0.5, 1.0, 1.5, 2.0],      # infer.py:279
    "classifier.infer.flip": True,                        # infer.py preprocess: each scale and its flip
    "pseudo_masks.eps_rule": "official",                  # infer.py's argmax over the --thr plane
    "pseudo_masks.threshold": 0.2,                        # infer.py:37 --thr 0.20, every script
    "saliency.source": "released",                        # the authors' PFAN maps (README)
    "crf.iterations": 10,                                 # deeplab-pytorch configs/voc12.yaml CRF
    "crf.pos_w": 3.0,
    "crf.pos_xy_std": 1.0,
    "crf.bi_w": 4.0,
    "crf.bi_xy_std": 67.0,
    "crf.bi_rgb_std": 3.0,
    "deeplab.backbone": "resnet101_caffe",                # configs/voc12.yaml MODEL.NAME DeepLabV2_ResNet101_MSC
    "deeplab.variant": "v2",
    "deeplab.init_weights": "resources/weights/deeplabv1_resnet101-coco.pth",  # configs/voc12.yaml INIT_MODEL
    "deeplab.aspp_rates": [6, 12, 18, 24],                # libs/models/__init__.py:36 atrous_rates
    "deeplab.multi_scale": True,                          # MSC
    "deeplab.msc_scales": [1.0, 0.75, 0.5],               # libs/models/__init__.py:38 MSC scales [0.5, 0.75] + 1.0
    "deeplab.freeze_bn": True,
    "deeplab.iterations": 20000,                          # configs/voc12.yaml SOLVER.ITER_MAX
    "deeplab.batch_size": 10,                             # SOLVER.BATCH_SIZE.TRAIN 5 x ITER_SIZE 2
    "deeplab.crop_size": 321,                             # IMAGE.SIZE.TRAIN
    # DATASET.SCALES 0.5-1.5 of a VOC image (500 px long side), as a long-side range (README's deviations)
    "deeplab.scale_range": [250, 750],
    "deeplab.flip": True,
    "deeplab.lr": 0.00025,                                # SOLVER.LR
    "deeplab.aspp_weight_lr_mult": 10.0,                  # main.py: 10 * LR for the ASPP weights
    "deeplab.aspp_bias_lr_mult": 20.0,                    # main.py: 20 * LR, no decay, for its biases
    "deeplab.momentum": 0.9,                              # SOLVER.MOMENTUM
    "deeplab.weight_decay": 0.0005,                       # SOLVER.WEIGHT_DECAY
    "deeplab.poly_power": 0.9,                            # SOLVER.POLY_POWER
    "deeplab.infer_scales": [1.0],                        # main.py test: one pass (MSC inside the model)
    "deeplab.infer_flip": False,
    "deeplab.train_on_crf": False,                        # the authors train on the raw pseudo-masks
}

# MS-COCO 2014: script/coco_eps.sh and coco_cls.sh, the authors' logs (docs/coco_facts.md), and
# deeplab-pytorch's COCO configs (configs/coco.yaml, cocostuff164k.yaml); the rest is VOC's.
COCO14 = {
    **VOC12,
    "dataset.source": "coco14",
    "classifier.lam": 0.9,                                # coco_eps.sh --lam 0.9
    "classifier.train.iterations": 256500,                # --max_iters 256500
    "classifier.train.decay_iterations": 76950,           # log/log_coco_eps.log: lr 0 from ~76,750
    "classifier.train.batch_size": 16,                    # --batch_size 16
    "classifier.train.crop_size": 321,                    # --crop_size 321
    "classifier.train.scale_range": [256, 448],           # --resize_size 256 448
    "deeplab.backbone": "resnet101",                      # ImageNet init: no COCO mask in a COCO WSSS run
    "deeplab.init_weights": "resources/weights/resnet101-63fe2227.pth",
    "deeplab.iterations": 100000,                         # configs/coco.yaml, cocostuff164k.yaml ITER_MAX
    "deeplab.scale_range": [320, 960],                    # scales 0.5-1.5 of COCO's 640-px long side
}

VOC12_V1 = {**VOC12, "deeplab.variant": "v1"}             # EPS issue 6: v2 without the ASPP, same init
VOC12_VGG16 = {
    **VOC12,
    "deeplab.backbone": "vgg16",                          # DeepLab-LargeFOV (EPS issue 12)
    "deeplab.variant": "v1",
    "deeplab.init_weights": "resources/weights/vgg16_20M.caffemodel",  # EPS issue 4
}

RUNS = {
    ("voc12.yaml",): VOC12,
    ("coco14.yaml",): COCO14,
    ("voc12.yaml", "voc12-deeplab-v1.yaml"): VOC12_V1,
    ("voc12.yaml", "voc12-deeplab-vgg16.yaml"): VOC12_VGG16,
}


def lookup(config: dict, dotted: str):
    for key in dotted.split("."):
        config = config[key]
    return config


@pytest.mark.parametrize("files", list(RUNS), ids="+".join)
def test_paper_config_resolves_to_the_official_recipe(files):
    config = load_config(*(REPO / "config" / f for f in files))
    expected = RUNS[files]
    got = {key: lookup(config, key) for key in expected}
    assert got == expected
