"""A toy data source registered from outside the package (tests/test_sources.py): a folder of
images and label PNGs with train/val lists, prepared through the one contract (wsss.data.prepared).

  <root>/folder/images/<id>.jpg, <root>/folder/labels/<id>.png, <root>/folder/{train,val}.txt
"""

from pathlib import Path

from wsss.core.io import read_id_list, read_label_png
from wsss.data.prepared import finish, prepared_dir, write_item
from wsss.data.sources import Source, register_source

CLASSES = ("disc", "square")


def prepare_folder(folder, out_dir, classes) -> dict:
    folder = Path(folder)
    train, val = read_id_list(folder / "train.txt"), read_id_list(folder / "val.txt")
    with prepared_dir(out_dir, boundaries=False) as tmp:
        present = {i: write_item(tmp, i, read_label_png(folder / "labels" / f"{i}.png")) for i in train + val}
        images = {i: folder / "images" / f"{i}.jpg" for i in present}
        return finish(tmp, classes, images, present, {"train_aug": train, "train": train, "val": val})


register_source(Source("toy_folder", str(Path(__file__).with_name("toy_source.smk")), CLASSES))
