"""Data source `voc`: PASCAL VOC 2012 + SBD, the paper's first benchmark (rules:
workflow/rules/sources/voc.smk; preparation: wsss.data.sources.voc.prepare). Its raw layout, its
classes and its record live here.

    R = dataset.root
    R/VOCdevkit/VOC2012/{JPEGImages, SegmentationClass, ImageSets/Segmentation/{train,val}.txt}
    R/benchmark_RELEASE/dataset/{cls/<id>.mat, img/<id>.jpg, train.txt, val.txt}
"""

from __future__ import annotations

import os

from wsss.data.sources.registry import Published, Source, register_source

# Top-level raw folders under dataset.root.
RAW = {"voc": "VOCdevkit", "sbd": "benchmark_RELEASE"}
# Inside VOCdevkit/
VOC_ROOT = "VOC2012"
VOC = {"images": f"{VOC_ROOT}/JPEGImages", "masks": f"{VOC_ROOT}/SegmentationClass",
       "sets": f"{VOC_ROOT}/ImageSets/Segmentation"}
# Inside benchmark_RELEASE/
SBD = {"cls": "dataset/cls", "img": "dataset/img", "train": "dataset/train.txt", "val": "dataset/val.txt"}


def raw(root: str | os.PathLike, role: str) -> str:
    """A raw top-level folder (`voc`, `sbd`) under dataset.root."""
    return f"{root}/{RAW[role]}"


VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")

# The paper's numbers and where they were read: docs/paper_deeplab_facts.md (its pseudo-mask rows as
# workflow/report/miou.rst quotes them). The paper's DeepLab rows are compared after DeepLab's CRF,
# as deeplab-pytorch (the authors' DeepLab, EPS issue 6) post-processes; the paper does not say here.
VOC_PUBLISHED = (
    Published("EPS pseudo-masks (VOC 2012 train)", "pseudo", "eps", 69.4),
    Published("EPS pseudo-masks + CRF (VOC 2012 train)", "pseudo_crf", "eps", 71.6),
    Published("EPS, DeepLab-v2 ResNet-101 (VOC 2012 val)", "deeplab_crf", "eps", 70.9, ("v2", "resnet101_caffe")),
    Published("EPS, DeepLab-v1 ResNet-101 (VOC 2012 val)", "deeplab_crf", "eps", 71.0, ("v1", "resnet101_caffe")),
)

VOC_RAW = r"(^|/)VOCdevkit(/|$)", r"(^|/)benchmark_RELEASE(/|$)"
register_source(Source("voc", "voc.smk", VOC_CLASSES, boundaries=True,
                       scene_labels="pascal_context", saliency_set="duts", heldout=True,
                       # halbielee/EPS README, "Pretrained models": train pseudo-mask mIoU of the
                       # released VOC 2012 checkpoints
                       released_train_miou={"cam": 47.05, "eps": 69.22},
                       # EPS issue #12: the pseudo-masks the paper's DeepLab trained on
                       released_pseudo_masks="eps_voc12_pseudo_masks.zip",
                       published=VOC_PUBLISHED,
                       hints=((VOC_RAW[0], "extract_voc", "VOC 2012 data"), (VOC_RAW[1], "extract_sbd", "SBD data"),
                              (r"(^|/)VOCtrainval_11-May-2012\.tar$", "download_voc", ""),
                              (r"(^|/)benchmark\.tgz$", "download_sbd", ""))))
