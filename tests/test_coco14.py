"""Data source coco14: download (loopback) -> extract (zip) -> convert, checked against hand-worked masks."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from coco_fixture import CLASSES, build_archives
from httpserver import ArchiveServer
from PIL import Image

from wsss.core.io import BadInputError, read_image, read_label_png
from wsss.core.sharding import merge_dirs
from wsss.data.download import download, extract
from wsss.data.layout import PREPARED
from wsss.data.sources.coco14 import prepare as coco14

X = 255  # ignore
# Hand-worked label maps (8 rows x 10 columns). Labels: person 1, car 2, dog 3, hair_drier 4, toothbrush 5.
EXPECTED = {
    # large person (1), the small dog (3) listed before it but drawn over it, a two-part toothbrush (90 -> 5)
    "COCO_train2014_000000000009": [
        [1, 1, 1, 1, 1, 1, 0, 5, 5, 5],
        [1, 1, 1, 1, 1, 1, 0, 5, 5, 5],
        [1, 1, 3, 3, 1, 1, 0, 0, 0, 0],
        [1, 1, 3, 3, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 5, 5, 5],
        [0, 0, 0, 0, 0, 0, 0, 5, 5, 5]],
    # a crowd of people (uncompressed RLE) ignored where no single object covers it; the dog (polygon)
    # and the car (compressed RLE) keep their labels inside it
    "COCO_train2014_000000000025": [
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [X, X, X, X, X, 0, 0, 0, 0, 0],
        [X, 3, 3, X, X, 0, 0, 0, 0, 0],
        [X, 3, 3, 2, 2, 2, 2, 0, 0, 0],
        [X, X, X, 2, 2, 2, 2, 0, 0, 0],
        [X, X, X, X, X, 0, 0, 0, 0, 0],
        [X, X, X, X, X, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]],
    # greyscale image: a hair drier (89 -> 4)
    "COCO_train2014_000000000030": [
        [0] * 10, [0] * 10, [0] * 10, [0] * 10,
        [0, 0, 0, 0, 0, 4, 4, 4, 4, 4],
        [0, 0, 0, 0, 0, 4, 4, 4, 4, 4],
        [0, 0, 0, 0, 0, 4, 4, 4, 4, 4],
        [0, 0, 0, 0, 0, 4, 4, 4, 4, 4]],
    # CMYK image: a toothbrush on the diagonal (compressed RLE)
    "COCO_train2014_000000000034": [[5 if c == r else 0 for c in range(10)] for r in range(8)],
    "COCO_val2014_000000000042": [[3] * 10, [3] * 10] + [[0] * 10] * 6,
}
TRAIN_IDS = ["COCO_train2014_000000000009", "COCO_train2014_000000000025", "COCO_train2014_000000000030",
             "COCO_train2014_000000000034"]
VAL_IDS = ["COCO_val2014_000000000042"]
# person, car, dog, hair_drier, toothbrush: every annotated class, crowd-only ones (the people of 25) included
LABELS = {"COCO_train2014_000000000009": [1, 0, 1, 0, 1], "COCO_train2014_000000000025": [1, 1, 1, 0, 0],
          "COCO_train2014_000000000030": [0, 0, 0, 1, 0], "COCO_train2014_000000000034": [0, 0, 0, 0, 1],
          "COCO_val2014_000000000042": [0, 0, 1, 0, 0]}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """dataset.root after download (loopback server) and extraction of the three archives."""
    base = tmp_path_factory.mktemp("coco")
    zips = build_archives(base / "served")
    root = base / "root"
    with ArchiveServer({p.name: p for p in zips.values()}) as srv:
        for name, archive in coco14.ARCHIVES.items():
            file_name = Path(archive.url).name
            assert file_name == zips[name].name  # the fixture's archives carry the real names
            got = download(f"{srv.url}/{file_name}", base / "downloads" / file_name, md5(zips[name]), backoff=0)
            extract(got, archive.member, coco14.raw_dir(root) / archive.member, archive.names)
    return root


@pytest.fixture(scope="module")
def prepared(root) -> Path:
    out = root / "prepared"
    counts = coco14.prepare_coco14(root, out, CLASSES, processes=1)
    assert counts == {"train_aug": 4, "train": 4, "val": 1}
    return out


def test_archives_are_the_official_ones():
    assert {n: (Path(a.url).parent.name, Path(a.url).name, a.md5, a.size) for n, a in coco14.ARCHIVES.items()} == {
        "train2014": ("zips", "train2014.zip", "0da8c0bd3d6becc4dcb32757491aca88", 13_510_573_713),
        "val2014": ("zips", "val2014.zip", "a3d79f5ed8d289b7a7554ce06a5782b3", 6_645_013_297),
        "annotations": ("annotations", "annotations_trainval2014.zip", "0a379cfc70b0e71301e0f377548639bd",
                        252_872_794)}


def test_extraction_keeps_only_the_instance_files(root):
    assert sorted(p.name for p in (coco14.raw_dir(root) / "annotations").iterdir()) == [
        "instances_train2014.json", "instances_val2014.json"]
    assert len(list((coco14.raw_dir(root) / "train2014").iterdir())) == 5


def test_masks_match_the_hand_worked_ones(prepared):
    masks = sorted(p.stem for p in (prepared / PREPARED["masks"]).iterdir())
    assert masks == TRAIN_IDS + VAL_IDS  # the images without annotations have none
    for image_id, expected in EXPECTED.items():
        got = read_label_png(prepared / PREPARED["masks"] / f"{image_id}.png")
        np.testing.assert_array_equal(got, np.array(expected, np.uint8), err_msg=image_id)


def test_lists_labels_and_classes(prepared):
    assert (prepared / PREPARED["train"]).read_text().split() == TRAIN_IDS
    assert (prepared / PREPARED["train_aug"]).read_text().split() == TRAIN_IDS
    assert (prepared / PREPARED["val"]).read_text().split() == VAL_IDS
    assert not (prepared / PREPARED["heldout"]).exists() and not (prepared / PREPARED["boundaries"]).exists()
    assert (prepared / PREPARED["classes"]).read_text().split("\n") == CLASSES + [""]
    with open(prepared / PREPARED["labels"], newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["id", *CLASSES]
    assert {r[0]: [int(v) for v in r[1:]] for r in rows[1:]} == LABELS
    assert [r[0] for r in rows[1:]] == TRAIN_IDS + VAL_IDS


def test_images_are_links_and_read_as_rgb(root, prepared):
    images = prepared / PREPARED["images"]
    assert sorted(p.stem for p in images.iterdir()) == TRAIN_IDS + VAL_IDS
    for image_id in TRAIN_IDS:
        assert os.stat(images / f"{image_id}.jpg").st_ino == os.stat(
            coco14.raw_dir(root) / "train2014" / f"{image_id}.jpg").st_ino
    with Image.open(images / "COCO_train2014_000000000030.jpg") as grey, \
            Image.open(images / "COCO_train2014_000000000034.jpg") as cmyk:
        assert (grey.mode, cmyk.mode) == ("L", "CMYK")  # linked as they are
    grey, cmyk = read_image(images / "COCO_train2014_000000000030.jpg"), read_image(
        images / "COCO_train2014_000000000034.jpg")
    assert grey.shape == cmyk.shape == (8, 10, 3)
    assert np.abs(grey.astype(int) - 128).max() <= 2
    assert np.abs(cmyk.astype(int) - [255, 0, 0]).max() <= 8  # CMYK (0, 255, 255, 0) is red


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_output_does_not_depend_on_processes_or_shards(root, prepared, tmp_path):
    coco14.prepare_coco14(root, tmp_path / "p2", CLASSES, processes=2)
    assert _files(tmp_path / "p2") == _files(prepared)
    shards = []
    for split in ("train", "val"):
        for shard in range(2):
            shards.append(tmp_path / f"{split}{shard}")
            coco14.convert_shard(root, split, shard, 2, shards[-1])
    assert merge_dirs(shards, tmp_path / "merged") == 5
    coco14.prepare_coco14(root, tmp_path / "from_shards", CLASSES, masks_dir=tmp_path / "merged")
    assert _files(tmp_path / "from_shards") == _files(prepared)


def _released(folder: Path, overrides: dict | None = None) -> Path:
    """The hand-worked masks as single-channel PNGs in the authors' layout (SegmentationClass/<split>/<id>.png)."""
    for image_id, expected in EXPECTED.items():
        path = folder / image_id.split("_")[1] / f"{image_id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image = (overrides or {}).get(image_id, Image.fromarray(np.array(expected, np.uint8), mode="L"))
        if image is not None:
            image.save(path)
    return folder


def test_released_masks_are_checked_and_linked(root, prepared, tmp_path):
    released = _released(tmp_path / "SegmentationClass")
    out = tmp_path / "released"
    coco14.prepare_coco14(root, out, CLASSES, masks="released", masks_dir=released)
    assert os.stat(out / PREPARED["masks"] / "COCO_val2014_000000000042.png").st_ino == os.stat(
        released / "val2014" / "COCO_val2014_000000000042.png").st_ino
    for image_id, expected in EXPECTED.items():
        np.testing.assert_array_equal(read_label_png(out / PREPARED["masks"] / f"{image_id}.png"), expected)
    assert (out / PREPARED["labels"]).read_bytes() == (prepared / PREPARED["labels"]).read_bytes()


def test_bad_released_masks_are_named(root, tmp_path):
    big = np.zeros((8, 10), np.uint8)
    big[0, 0] = 81
    released = _released(tmp_path / "SegmentationClass", {
        "COCO_train2014_000000000009": Image.new("RGB", (10, 8)),
        "COCO_train2014_000000000025": Image.fromarray(big, mode="L"),
        "COCO_train2014_000000000030": Image.new("L", (8, 8)),
        "COCO_val2014_000000000042": None})
    with pytest.raises(BadInputError) as err:
        coco14.prepare_coco14(root, tmp_path / "out", CLASSES, masks="released", masks_dir=released)
    text = str(err.value)
    assert "4 problem(s)" in text and "nothing was written" in text
    assert "train2014/COCO_train2014_000000000009.png: label PNG has mode RGB" in text
    assert "train2014/COCO_train2014_000000000025.png: holds label 81 but dataset.classes lists only 5" in text
    assert "train2014/COCO_train2014_000000000030.png: mask is 8x8 but its image is 10x8" in text
    assert "val2014/COCO_val2014_000000000042.png: label map is missing" in text
    assert "dataset.coco14.masks: convert" in text
    assert not (tmp_path / "out").exists()


def _copy_root(root: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "root"
    shutil.copytree(root / coco14.RAW_DIR, copy / coco14.RAW_DIR, copy_function=os.link)
    return copy


def _rewrite_json(root: Path, split: str, edit) -> Path:
    path = coco14.instances_json(coco14.raw_dir(root), split)
    data = json.loads(path.read_text())
    edit(data)
    path.unlink()  # a hard link to the module's copy: replace, do not write through
    path.write_text(json.dumps(data))
    return path


def test_corrupt_json_is_named_with_the_fix(root, tmp_path):
    copy = _copy_root(root, tmp_path)
    path = coco14.instances_json(coco14.raw_dir(copy), "val")
    path.unlink()
    path.write_text('{"images": [')
    with pytest.raises(BadInputError, match=rf"{path}: not a readable JSON file .*delete {path.parent} and rerun, "
                                            "so that it is extracted again from annotations_trainval2014.zip"):
        coco14.prepare_coco14(copy, tmp_path / "out", CLASSES)


def test_image_missing_from_the_archive_is_named(root, tmp_path):
    copy = _copy_root(root, tmp_path)
    missing = coco14.raw_dir(copy) / "train2014" / "COCO_train2014_000000000025.jpg"
    missing.unlink()
    with pytest.raises(BadInputError, match=rf"{missing}: image is missing \(listed in instances_train2014.json\)"
                       ) as err:
        coco14.prepare_coco14(copy, tmp_path / "out", CLASSES)
    assert "1 problem(s)" in str(err.value)
    assert f"delete {missing.parent} and rerun, so that it is extracted again from train2014.zip" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_unknown_category_and_bad_rle_are_named(root, tmp_path):
    copy = _copy_root(root, tmp_path)

    def edit(data):
        data["annotations"][0]["category_id"] = 12  # not among the categories
        data["annotations"][3]["segmentation"]["size"] = [9, 10]  # the crowd RLE of image 25

    path = _rewrite_json(copy, "train", edit)
    with pytest.raises(BadInputError, match=rf"{path}: annotation 101: category_id 12 is not among"):
        coco14.prepare_coco14(copy, tmp_path / "out", CLASSES)
    _rewrite_json(copy, "train", lambda d: d["annotations"][0].update(category_id=18))
    with pytest.raises(BadInputError, match=r"image COCO_train2014_000000000025, annotations 201, 202, 203: "
                                            r"RLE size 10x9 differs from the image's 10x8"):
        coco14.prepare_coco14(copy, tmp_path / "out", CLASSES)


def test_class_list_must_match_the_categories(root, tmp_path):
    with pytest.raises(BadInputError, match="set dataset.classes to the file's categories"):
        coco14.prepare_coco14(root, tmp_path / "out", ["person", "car", "dog", "toothbrush", "hair_drier"])


@pytest.mark.parametrize("entry", ["train2014/../../evil.txt", "/abs/evil.txt"])
def test_zip_extraction_refuses_entries_outside_the_folder(tmp_path, entry):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("train2014/ok.jpg", b"x")
        zf.writestr(zipfile.ZipInfo(entry), b"x")
    with pytest.raises(BadInputError, match="would be written outside the target folder"):
        extract(bad, "train2014", tmp_path / "out" / "train2014")
    assert not (tmp_path / "out" / "train2014").exists() and not (tmp_path / "evil.txt").exists()


def test_zip_extraction_refuses_links(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        link = zipfile.ZipInfo("train2014/link.jpg")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(BadInputError, match="is a link"):
        extract(bad, "train2014", tmp_path / "out" / "train2014")


def test_zip_extraction_names_a_missing_file(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("annotations/instances_train2014.json", b"{}")
    with pytest.raises(BadInputError, match="has no annotations/instances_val2014.json"):
        extract(archive, "annotations", tmp_path / "out", ["instances_train2014.json", "instances_val2014.json"])


def test_conversion_bench_rows(tmp_path):
    from wsss_dev.bench.coco import bench_coco_conversion

    rows = bench_coco_conversion(images=4, processes=(1, 2), workdir=tmp_path)
    assert [(r["stage"], r["processes"], r["images"], r["identical_output"]) for r in rows] == [
        ("coco_conversion", 1, 4, True), ("coco_conversion", 2, 4, True)]
    assert all(r["images_per_s"] > 0 and r["json_load_s"] > 0 for r in rows)
    assert list(tmp_path.iterdir()) == []  # its synthetic data is gone


def _mask_png(image_id: str) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.array(EXPECTED[image_id], np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_released_masks_archive_is_found_whatever_its_nesting(root, prepared, tmp_path, kind):
    """The authors' archive layout is not published: nested or flat, zip or tar, its masks land in
    <split>/<id>.png, and prepare_coco14 (masks: released) reads them from there."""
    import tarfile

    entries = {f"coco/SegmentationClass/{i.split('_')[1]}/{i}.png": _mask_png(i) for i in TRAIN_IDS}
    entries |= {f"{i}.png": _mask_png(i) for i in VAL_IDS}  # one at the archive's top level
    entries["coco/readme.txt"] = b"not a mask"
    archive = tmp_path / f"masks.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for name, data in entries.items():
                zf.writestr(name, data)
    else:
        for name, data in entries.items():
            (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "src" / name).write_bytes(data)
        with tarfile.open(archive, "w:gz") as tf:
            for name in entries:
                tf.add(tmp_path / "src" / name, name)
    out = tmp_path / "SegmentationClass"
    assert coco14.extract_released_masks(archive, out) == {"train2014": 4, "val2014": 1}
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(
        f"{i.split('_')[1]}/{i}.png" for i in TRAIN_IDS + VAL_IDS)
    coco14.prepare_coco14(root, tmp_path / "prepared", CLASSES, masks="released", masks_dir=out)
    got, converted = _files(tmp_path / "prepared"), _files(prepared)
    masks = [name for name in converted if name.startswith(PREPARED["masks"])]
    assert sorted(got) == sorted(converted) and {n: got[n] for n in converted if n not in masks} == {
        n: converted[n] for n in converted if n not in masks}  # images, lists, labels.csv, classes.txt
    for name in masks:  # linked as released (grey PNGs), the same labels as the hand-worked ones
        np.testing.assert_array_equal(read_label_png(tmp_path / "prepared" / name), read_label_png(prepared / name))


def test_a_released_masks_archive_without_masks_or_with_duplicates_is_refused(tmp_path):
    for name, entries in (("empty.zip", {"x/readme.txt": b"x"}),
                          ("twice.zip", {"a/COCO_val2014_000000000042.png": b"1",
                                         "b/COCO_val2014_000000000042.png": b"2"})):
        with zipfile.ZipFile(tmp_path / name, "w") as zf:
            for entry, data in entries.items():
                zf.writestr(entry, data)
        with pytest.raises(BadInputError, match=rf"{name}: holds .*dataset.coco14.masks: convert"):
            coco14.extract_released_masks(tmp_path / name, tmp_path / "out")
        assert not (tmp_path / "out").exists()
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr(zipfile.ZipInfo("../COCO_val2014_000000000042.png"), b"x")
    with pytest.raises(BadInputError, match="would be written outside"):
        coco14.extract_released_masks(evil, tmp_path / "out")
    (tmp_path / "plain.zip").write_bytes(b"not an archive")
    with pytest.raises(BadInputError, match="neither a zip nor a tar"):
        coco14.extract_released_masks(tmp_path / "plain.zip", tmp_path / "out")


# ---- the conversion rule on single annotations (wsss.data.sources.coco14.masks), no archive ----------
def test_instance_rle_reads_each_form_and_names_what_is_wrong():
    import warnings

    from pycocotools import mask as coco_mask

    from wsss.data.sources.coco14.masks import decode, instance_rle, rasterize

    h, w = 4, 5
    triangle = [0.0, 0.0, 4.0, 0.0, 0.0, 3.0]  # six numbers: the smallest polygon with an area
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = coco_mask.decode(coco_mask.frPyObjects([triangle], h, w)[0]).astype(bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # decode silences pycocotools' numpy-2 copy warning, nothing else
        tri = decode(instance_rle([triangle, [1.0, 1.0, 3.0, 3.0], "junk"], h, w))
        np.testing.assert_array_equal(tri, reference)
        assert tri.sum() > 0
        # a 4-number "polygon" has no area and is skipped (pycocotools would read it as a box): empty mask
        empty = decode(instance_rle([[1.0, 1.0, 3.0, 3.0]], h, w))
        assert empty.dtype == bool and empty.shape == (h, w) and not empty.any()
        counts = [3, 4, 13]  # column-major runs: 3 zeros, 4 ones, 13 zeros
        plain = decode(instance_rle({"size": [h, w], "counts": counts}, h, w))
        np.testing.assert_array_equal(np.flatnonzero(plain.ravel(order="F")), [3, 4, 5, 6])
        compressed = coco_mask.frPyObjects({"size": [h, w], "counts": counts}, h, w)["counts"]
        for form in (compressed, compressed.decode("ascii")):  # bytes or str, as json gives it
            np.testing.assert_array_equal(decode(instance_rle({"size": [h, w], "counts": form}, h, w)), plain)
    for bad, message in (([[0.0, 0.0, 4.0, 0.0, 0.0]] * 2 + [triangle + [1.0]], "a polygon has an odd number of "
                                                                                  "coordinates"),
                         ({"counts": counts}, "segmentation is neither polygons nor an RLE dict (dict)"),
                         ({"size": [h, w]}, "segmentation is neither polygons nor an RLE dict (dict)"),
                         ("polygon", "segmentation is neither polygons nor an RLE dict (str)"),
                         ({"size": [h, w], "counts": [3, 4, 12]}, "RLE counts sum to 19, not 4x5 = 20"),
                         ({"size": [h, w], "counts": 7}, "RLE counts of type int")):
        with pytest.raises(ValueError) as err:
            instance_rle(bad, h, w)
        assert str(err.value) == message
    label = rasterize([(2, False, [triangle], 1)], h, w)
    assert label.dtype == np.uint8 and label.tolist() == np.where(tri, 2, 0).tolist()


def test_released_mask_and_its_image_both_named(root, tmp_path):
    """An id whose image is missing and whose released mask is bad: both problems are reported."""
    copy = _copy_root(root, tmp_path)
    missing = coco14.raw_dir(copy) / "train2014" / "COCO_train2014_000000000030.jpg"
    missing.unlink()
    released = _released(tmp_path / "SegmentationClass", {"COCO_train2014_000000000030": Image.new("L", (8, 8))})
    with pytest.raises(BadInputError) as err:
        coco14.prepare_coco14(copy, tmp_path / "out", CLASSES, masks="released", masks_dir=released)
    text = str(err.value)
    assert "2 problem(s)" in text and f"{missing}: image is missing (listed in instances_train2014.json)" in text
    assert "train2014/COCO_train2014_000000000030.png: mask is 8x8 but its image is 10x8" in text


def _square(x0: int, x1: int, y0: int = 0, y1: int = 4) -> list:
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def test_convert_one_paints_equal_areas_in_annotation_order_and_reports_what_vanished(tmp_path):
    """Two instances of one area: the later annotation id is painted over the earlier one, whatever their
    labels; a label left without a pixel is returned (the conversion's log names it)."""
    from wsss.data.sources.coco14 import masks

    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(tmp_path / "a.jpg")
    json_path = tmp_path / "instances_train2014.json"
    # (label, iscrowd, segmentation, annotation id): 5 first, then 2 over its right half
    side_by_side = [(5, False, _square(0, 4), 1), (2, False, _square(2, 6), 2)]
    image_id, problems, vanished = masks.convert_one(("a", str(tmp_path / "a.jpg"), 8, 8, side_by_side, json_path,
                                                      tmp_path / "out"))
    label = read_label_png(tmp_path / "out" / "a.png")
    assert (image_id, problems, vanished) == ("a", [], [])
    assert label[1, :7].tolist() == [5, 5, 2, 2, 2, 2, 0] and label[5].max() == 0
    stacked = [(5, False, _square(0, 4), 1), (2, False, _square(0, 4), 2)]
    assert masks.convert_one(("a", str(tmp_path / "a.jpg"), 8, 8, stacked, json_path, tmp_path / "out")) == (
        "a", [], [5])


def test_convert_one_names_each_problem_where_it_is(tmp_path):
    from wsss.data.sources.coco14 import masks
    from wsss.data.validate import Problem

    folder = tmp_path / "train2014"
    folder.mkdir()
    Image.fromarray(np.full((6, 8, 3), 90, np.uint8)).save(folder / "a.jpg")
    json_path = tmp_path / "annotations" / "instances_train2014.json"
    fix = (f"delete {folder} and rerun, so that it is extracted again from train2014.zip (md5-checked); if the file "
           "is still missing, the archive is not the 2014 release the annotations describe")
    job = ("a", str(folder / "a.jpg"), 8, 8, [(5, False, _square(0, 4), 1)], json_path, tmp_path / "out")
    assert masks.convert_one(job) == ("a", [Problem(str(folder / "a.jpg"), "image is 8x6 but instances_train2014.json "
                                                    "says 8x8", fix)], [])
    job = ("b", str(folder / "b.jpg"), 8, 8, [(5, False, _square(0, 4), 1)], json_path, tmp_path / "out")
    assert masks.convert_one(job) == ("b", [Problem(str(folder / "b.jpg"), "image is missing (listed in "
                                                    "instances_train2014.json)", fix)], [])
    wrong_size = {"size": [3, 3], "counts": [9]}  # an RLE of another image's size
    bad = ("a", str(folder / "a.jpg"), 6, 8, [(5, False, wrong_size, 7), (3, False, _square(0, 2), 9)], json_path,
           tmp_path / "out")
    _, problems, vanished = masks.convert_one(bad)
    assert vanished == [] and len(problems) == 1 and problems[0].path == str(json_path)
    assert problems[0].what.startswith("image a, annotations 7, 9: ")
    assert problems[0].fix == f"re-extract instances_train2014.json from annotations_trainval2014.zip (delete " \
                              f"{json_path.parent} and rerun)"


def test_ready_one_names_a_missing_released_mask_and_its_fix(tmp_path):
    from wsss.data.sources.coco14 import masks
    from wsss.data.validate import Problem

    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(tmp_path / "a.jpg")
    job = ("a", str(tmp_path / "a.jpg"), 8, 8, tmp_path / "instances_val2014.json", str(tmp_path / "masks" / "a.png"),
           81, tmp_path / "out")
    assert masks.ready_one(job) == ("a", [Problem(str(tmp_path / "masks" / "a.png"), "label map is missing for an "
                                                  "annotated image", "use the complete released archive, or "
                                                  "dataset.coco14.masks: convert")], [])
