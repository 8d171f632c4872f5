"""PASCAL-Context, the scene labels of VOC's confusion-ratio table: the schema's published checksums,
the download of both files through the one downloader, and the label mapping, on loopback files in
the real layout (a .tar.gz of `59_context_labels/<id>.png` label PNGs and the `N: name` class list)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import numpy as np
import pytest
from httpserver import ArchiveServer
from PIL import Image

from conftest import REPO
from wsss.config.load import load_config
from wsss.core.io import BadInputError, read_label_png, write_id_list, write_label_png
from wsss.data.pascal_context import download_context, prepare_context

# PASCAL-Context's 59 classes in label order (label k = line k of 59_labels.txt).
CONTEXT_59 = ("aeroplane bag bed bedclothes bench bicycle bird boat book bottle building bus cabinet car cat "
              "ceiling chair cloth computer cow cup curtain dog door fence floor flower food grass ground horse "
              "keyboard light motorbike mountain mouse person plate platform pottedplant road rock sheep shelves "
              "sidewalk sign sky snow sofa table track train tree truck tvmonitor wall water window wood").split()
TRACK, WATER = CONTEXT_59.index("track") + 1, CONTEXT_59.index("water") + 1  # 51, 57


def _png(label: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(label.astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def _context_files(tmp_path, labels: dict[str, np.ndarray]):
    """The two published files: the label archive and the numbered class list."""
    archive = tmp_path / "served" / "59_context_labels.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        folder = tarfile.TarInfo("59_context_labels")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for image_id, label in labels.items():
            data = _png(label)
            info = tarfile.TarInfo(f"59_context_labels/{image_id}.png")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    names = archive.parent / "59_labels.txt"
    names.write_text("".join(f"{k}: {name}\n" for k, name in enumerate(CONTEXT_59, start=1)))
    return archive, names


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_the_paper_setting_has_pascal_contexts_published_checksums():
    evaluation = load_config(REPO / "config" / "voc12.yaml")["evaluation"]
    assert evaluation["context_md5"] == "f85d450010762a0e1080304286ce30ed"
    assert evaluation["context_labels_md5"] == "993901f2d930cc038c406845f08fa082"
    assert evaluation["context_url"].endswith("/59_context_labels.tar.gz")
    assert evaluation["context_labels_url"].endswith("/59_labels.txt")
    # The pairs name VOC classes and PASCAL-Context classes, as spelt in the two class lists.
    assert evaluation["confusion_pairs"] == [{"target": "train", "coincident": "track"},
                                             {"target": "boat", "coincident": "water"}]
    voc = load_config(REPO / "config" / "voc12.yaml")["dataset"]["classes"]
    assert {p["target"] for p in evaluation["confusion_pairs"]} <= set(voc)
    assert {p["coincident"] for p in evaluation["confusion_pairs"]} <= set(CONTEXT_59)


def test_download_retries_both_files_and_the_labels_map_to_the_configured_pairs(tmp_path):
    from eval_helpers import run_evaluation

    from wsss.stages.evaluation import EvalLabel

    scene = np.zeros((6, 8), np.uint8)
    scene[4:] = TRACK  # a track band under the train
    scene[:, 0] = WATER
    archive, names = _context_files(tmp_path, {"2008_000002": scene, "2008_000003": np.full((6, 8), WATER)})
    out = tmp_path / "downloads"
    with ArchiveServer({archive.name: archive, names.name: names}) as srv:
        srv.cut_after[archive.name] = 100  # a cut connection: resumed with Range
        srv.fail_next[names.name] = [503, 502]  # the server is busy twice: retried, not a bare urlopen's failure
        download_context(f"{srv.url}/{archive.name}", _md5(archive), f"{srv.url}/{names.name}", _md5(names),
                         out / archive.name, out / names.name, backoff=0)
        assert srv.requests == [(archive.name, None), (archive.name, "bytes=100-"),
                                (names.name, None), (names.name, None), (names.name, None)]
        with pytest.raises(BadInputError, match=r"59_labels2.txt: MD5 \w+ does not match the expected 0{32}"):
            download_context(f"{srv.url}/{archive.name}", _md5(archive), f"{srv.url}/{names.name}", "0" * 32,
                             out / archive.name, out / "59_labels2.txt", backoff=0)
    assert (out / archive.name).read_bytes() == archive.read_bytes() and not (out / "59_labels2.txt").exists()

    context = tmp_path / "resources/voc/context"
    assert prepare_context(out / archive.name, out / names.name, context) == 2
    assert (context / "classes.txt").read_text().split() == CONTEXT_59
    np.testing.assert_array_equal(read_label_png(context / "2008_000002.png"), scene)

    # The configured pairs resolve through both class lists: the prediction calls 2 track pixels and
    # 1 water pixel of the background "train" and "boat"; 10 train and 4 boat pixels are right.
    config = load_config(REPO / "config" / "voc12.yaml")
    classes = config["dataset"]["classes"]
    train, boat = classes.index("train") + 1, classes.index("boat") + 1
    gt, pred = np.zeros((6, 8), np.uint8), np.zeros((6, 8), np.uint8)
    gt[1:3, 2:7] = pred[1:3, 2:7] = train
    pred[4, 2:4] = train
    gt[0:4, 1] = pred[0:4, 1] = boat
    pred[5, 0] = boat
    for name, label in (("gt", gt), ("pred", pred)):
        write_label_png(tmp_path / name / "2008_000002.png", label)
        write_label_png(tmp_path / name / "2008_000003.png", np.zeros((6, 8), np.uint8))
    write_id_list(tmp_path / "ids.txt", ["2008_000002", "2008_000003", "2012_000001"])  # 2012: no context map
    write_label_png(tmp_path / "pred" / "2012_000001.png", np.zeros((6, 8), np.uint8))
    (tmp_path / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    summary = run_evaluation("confusion_ratio", tmp_path / "pred", tmp_path / "ids.txt", tmp_path,
                             EvalLabel("cam", "pseudo"), shards=2, gt_dir=tmp_path / "gt",
                             classes_file=tmp_path / "classes.txt", context_dir=context,
                             pairs=config["evaluation"]["confusion_pairs"])
    rows = {(r["target"], r["coincident"]): (r["fp"], r["tp"]) for r in summary["pairs"]}
    assert rows == {("train", "track"): (2, 10), ("boat", "water"): (1, 4)}
    assert summary["images"] == 2 and summary["skipped"] == 1
    assert json.loads((tmp_path / "cam_pseudo_confusion_ratio.json").read_text())["pairs"][0]["confusion_ratio"] == \
        pytest.approx(0.2)
