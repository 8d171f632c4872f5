"""The data-source registry: one record per dataset the workflow can start from.

A source is one module (its download/convert/prepare functions) and one rule file whose rules end
in `<dataset.root>/prepared/` (wsss.data.layout.PREPARED), the one layout every later stage reads.
Its record declares what it provides beyond images, masks, labels and the train_aug/train/val
lists, so that the workflow builds only the tables the data can feed:
- `boundaries`: prepared/boundaries/ (SBD-style class-agnostic edges) for the boundary table;
- `scene_labels`: where the confusion-ratio table's scene labels come from: "pascal_context"
  (downloaded by rules/context.smk, VOC ids), "own" (the source writes `<root>/context/`), or None;
- `saliency_set`: PFAN's training set: "duts" (downloaded by rules/duts.smk) or "own" (the source
  writes `<root>/DUTS-TR/`);
- `heldout`: prepared/lists/heldout.txt, a labelled split disjoint from the reported ones, where
  values are chosen by measurement.
The published pseudo-mask mIoU of the authors' released classifiers on this dataset are facts of
the record (`released_train_miou`), read by the released_checkpoints table; so are the rows of the
paper's tables on this dataset (`published`), read by the paper-vs-run table (wsss.stages.paper).

This module imports nothing heavy: the Snakefile imports it while parsing. Out-of-tree sources
register from a module named in WSSS_PLUGINS (tests/plugins/toy_source.py), like methods.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from wsss.core.hints import register_hint

RULES_DIR = Path(__file__).resolve().parents[4] / "workflow" / "rules" / "sources"


@dataclass(frozen=True)
class Published:
    """One row of the paper's tables on a dataset: EPS's (or a baseline's) mIoU (%) at one stage."""

    row: str  # the row as the paper's table reads it
    stage: str  # the workflow's stage it compares with (pseudo, pseudo_crf, deeplab, deeplab_crf)
    method: str
    miou: float
    # the DeepLab of the row as (deeplab.variant, deeplab.backbone); None: a pseudo-mask row, or unknown
    deeplab: tuple[str, str] | None = None


@dataclass(frozen=True)
class Source:
    name: str
    rules: str  # the rule file (absolute path) whose rules write <root>/prepared/
    classes: tuple[str, ...]  # its foreground classes in label order (dataset.classes: null takes these)
    boundaries: bool = False
    scene_labels: str | None = None  # "pascal_context" | "own" | None
    saliency_set: str = "duts"  # "duts" | "own"
    heldout: bool = False
    # method -> train pseudo-mask mIoU (%) of the authors' released classifier, as they published it
    released_train_miou: dict[str, float] = field(default_factory=dict)
    # weights.files name of the authors' released pseudo-masks of this dataset (method `released`)
    released_pseudo_masks: str | None = None
    # the rows of the paper's tables on this dataset (the paper-vs-run table); empty: none published
    published: tuple[Published, ...] = ()
    # (path regex, rule, when) of the source's raw files, for the "regenerate with" hints of errors
    hints: tuple[tuple[str, str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.scene_labels not in ("pascal_context", "own", None):
            raise ValueError(f"source {self.name}: scene_labels must be pascal_context, own or None")
        if self.saliency_set not in ("duts", "own"):
            raise ValueError(f"source {self.name}: saliency_set must be duts or own")

    def tables(self) -> list[str]:
        """The result tables this source's data can feed (mIoU always)."""
        return ["miou"] + (["boundary"] if self.boundaries else []) + (
            ["confusion_ratio"] if self.scene_labels else [])

    def missing_table(self, table: str) -> str:
        """One line on why `table` cannot be built from this source."""
        what = {"boundary": "boundary annotations (SBD-style prepared/boundaries/)",
                "confusion_ratio": "scene labels (e.g. PASCAL-Context)"}[table]
        return (f"results/tables/{table}.csv needs {what}, which data source {self.name!r} does not provide; "
                f"its tables are {', '.join(self.tables())}")


SOURCES: dict[str, Source] = {}

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
SYNTHETIC_CLASSES = ("train", "boat", "ball", "box", "kite", "star")
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


def register_source(record: Source) -> Source:
    SOURCES[record.name] = record
    for pattern, rule, when in record.hints:
        register_hint(pattern, rule, when)
    return record


def source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown data source {name!r}; registered: {', '.join(SOURCES)} "
                         "(wsss.data.sources; docs/architecture.md, 'Add a dataset')") from None


# The paper's numbers and where they were read: docs/paper_deeplab_facts.md (its pseudo-mask rows as
# workflow/report/miou.rst quotes them). The paper's DeepLab rows are compared after DeepLab's CRF,
# as deeplab-pytorch (the authors' DeepLab, EPS issue 6) post-processes; the paper does not say here.
VOC_PUBLISHED = (
    Published("EPS pseudo-masks (VOC 2012 train)", "pseudo", "eps", 69.4),
    Published("EPS pseudo-masks + CRF (VOC 2012 train)", "pseudo_crf", "eps", 71.6),
    Published("EPS, DeepLab-v2 ResNet-101 (VOC 2012 val)", "deeplab_crf", "eps", 70.9, ("v2", "resnet101_caffe")),
    Published("EPS, DeepLab-v1 ResNet-101 (VOC 2012 val)", "deeplab_crf", "eps", 71.0, ("v1", "resnet101_caffe")),
)
COCO14_PUBLISHED = (Published("EPS, DeepLab (MS-COCO 2014 val; backbone not confirmed)", "deeplab_crf", "eps", 35.7),)

VOC_RAW = r"(^|/)VOCdevkit(/|$)", r"(^|/)benchmark_RELEASE(/|$)"
register_source(Source("voc", str(RULES_DIR / "voc.smk"), VOC_CLASSES, boundaries=True,
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
register_source(Source("synthetic", str(RULES_DIR / "synthetic.smk"), SYNTHETIC_CLASSES, boundaries=True,
                       scene_labels="own", saliency_set="own", heldout=True,
                       hints=tuple((p, "synthesize_dataset", "dataset.source synthetic")
                                   for p in (*VOC_RAW, r"(^|/)DUTS-TR(/|$)"))))

COCO_RAW = r"(^|/)coco2014/"
register_source(Source("coco14", str(RULES_DIR / "coco14.smk"), COCO14_CLASSES, boundaries=False,
                       scene_labels=None, saliency_set="duts", heldout=False,
                       # halbielee/EPS README, "Classification network": train pseudo-mask mIoU of the
                       # released MS-COCO 2014 checkpoints
                       released_train_miou={"cam": 31.23, "eps": 37.15},
                       published=COCO14_PUBLISHED,
                       hints=((COCO_RAW + r"(train2014|val2014|annotations)(/|$)", "extract_coco14", ""),
                              (COCO_RAW + r"SegmentationClass(/|$)", "extract_coco14_masks",
                               "dataset.coco14.masks released"),
                              (COCO_RAW + r"converted_shards(/|$)", "convert_coco14", "dataset.coco14.masks convert"),
                              (COCO_RAW + r"converted(/|$)", "merge_coco14_masks", "dataset.coco14.masks convert"),
                              (r"(^|/)(train2014|val2014|annotations_trainval2014)\.zip$", "download_coco14", ""))))


def _load_plugins() -> None:
    for name in filter(None, (s.strip() for s in os.environ.get("WSSS_PLUGINS", "").split(","))):
        importlib.import_module(name)


_load_plugins()
