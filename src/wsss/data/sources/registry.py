"""The data-source registry: the `Source` record, `register_source` and `source`. Each source's
package registers its own record on import, as a method's module does (wsss.methods.registry)."""

from __future__ import annotations

from dataclasses import dataclass, field

from wsss.core.hints import register_hint


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
    # the rule file whose rules write <root>/prepared/: a file name in workflow/rules/sources/ (a
    # built-in source), or an absolute path (an out-of-tree source's own rule file)
    rules: str
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
