"""Data: the on-disk layout (VOC 2012 + SBD), the synthetic benchmark, downloads, preparation, datasets."""

from wsss.data.datasets import (  # noqa: F401
    IMAGENET_MEAN,
    IMAGENET_STD,
    TrainTransform,
    WSSSDataset,
    denormalize,
    read_labels_csv,
)
