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

A source is a package here (`voc`, `synthetic`, `coco14`): its `__init__` holds its record, its
class names and its rerun hints and registers them (it imports nothing heavy: the Snakefile
imports it while parsing); its modules beside it download, convert and prepare. Out-of-tree
sources register from a module named in WSSS_PLUGINS (tests/plugins/toy_source.py), like methods.
"""

import importlib
import pkgutil

from wsss.core.plugins import load_plugins
from wsss.data.sources.registry import SOURCES, Published, Source, register_source, source

__all__ = ["SOURCES", "Published", "Source", "register_source", "source"]

# Every package beside this module is a built-in source: importing it registers it, so adding a
# source adds a folder and edits no list. Sorted, so that the registry's order is the same everywhere.
for _package in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg):
    importlib.import_module(f"{__name__}.{_package}")

load_plugins()
