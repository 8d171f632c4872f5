"""Data source `coco14`: MS-COCO 2014, the paper's second benchmark (rules:
workflow/rules/sources/coco14.smk; downloads, conversion and preparation: wsss.data.sources.coco14.prepare;
the mask rule: wsss.data.sources.coco14.masks)."""

from __future__ import annotations

from wsss.data.sources.registry import Published, Source, register_source

# MS-COCO's 80 categories in ascending category_id (1..90 with its gaps removed), spelt as the
# authors' metadata/coco/labels.txt (spaces as "_"); the coco14 conversion derives the same list.
COCO14_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic_light",
    "fire_hydrant", "stop_sign", "parking_meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports_ball", "kite", "baseball_bat", "baseball_glove", "skateboard", "surfboard",
    "tennis_racket", "bottle", "wine_glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot_dog", "pizza", "donut", "cake", "chair", "couch",
    "potted_plant", "bed", "dining_table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell_phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy_bear",
    "hair_drier", "toothbrush")

# docs/paper_deeplab_facts.md: the paper's MS-COCO row; its DeepLab backbone is not confirmed.
COCO14_PUBLISHED = (Published("EPS, DeepLab (MS-COCO 2014 val; backbone not confirmed)", "deeplab_crf", "eps", 35.7),)

COCO_RAW = r"(^|/)coco2014/"
register_source(Source("coco14", "coco14.smk", COCO14_CLASSES, boundaries=False,
                       scene_labels=None, saliency_set="duts", heldout=False,
                       # halbielee/EPS README, "Classification network": train pseudo-mask mIoU of the
                       # released MS-COCO 2014 checkpoints
                       released_train_miou={"cam": 31.23, "eps": 37.15},
                       published=COCO14_PUBLISHED,
                       hints=((COCO_RAW + r"(train2014|val2014)(/|$)", "extract_coco14", ""),
                              (COCO_RAW + r"annotations(/|$)", "extract_coco14_annotations", ""),
                              (COCO_RAW + r"SegmentationClass(/|$)", "extract_coco14_masks",
                               "dataset.coco14.masks released"),
                              (COCO_RAW + r"converted_shards(/|$)", "convert_coco14", "dataset.coco14.masks convert"),
                              (COCO_RAW + r"converted(/|$)", "merge_coco14_masks", "dataset.coco14.masks convert"),
                              (r"(^|/)(train2014|val2014|annotations_trainval2014)\.zip$", "download_coco14", ""))))
