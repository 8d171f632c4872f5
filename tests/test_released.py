"""Method `released`: the authors' released pseudo-masks as a mask source, through the whole DAG."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import TINY, snakemake
from wsss.core import results
from wsss.core.io import read_id_list, read_label_png
from wsss.metrics.confusion_matrix import evaluate_dirs


def write_release(prepared, path, ids, nested="VOC2012/PseudoMasks"):
    """A zip of the ground truth with each mask's lower half set to background (a known pseudo-mask)."""
    masks = {}
    with zipfile.ZipFile(path, "w") as zf:
        for i in ids:
            mask = read_label_png(prepared / "SegmentationClassAug" / f"{i}.png")
            mask[mask.shape[0] // 2:] = 0
            masks[i] = mask
            from io import BytesIO

            from PIL import Image
            buf = BytesIO()
            Image.fromarray(mask, mode="L").save(buf, format="PNG")
            zf.writestr(f"{nested}/{i}.png", buf.getvalue())
    return masks


@pytest.mark.slow
def test_released_masks_train_deeplab_and_fill_the_tables(tmp_path):
    snakemake("resources/synthetic/prepared", "--cores", "2", "--configfile", str(TINY), workdir=tmp_path)
    prepared = tmp_path / "resources/synthetic/prepared"
    train_aug = read_id_list(prepared / "lists/train_aug.txt")
    masks = write_release(prepared, tmp_path / "release.zip", train_aug)
    overlay = {"methods": ["released"], "deeplab": {"methods": ["released"]},
               "pseudo_masks": {"released_archive": str(tmp_path / "release.zip")}}
    (tmp_path / "released.yaml").write_text(yaml.safe_dump(overlay))
    configs = [str(TINY), str(tmp_path / "released.yaml")]
    proc = snakemake("-n", "--configfile", *configs, workdir=tmp_path)
    assert "train_classifier" not in proc.stdout and "import_released_masks" in proc.stdout
    snakemake("--cores", "2", "--configfile", *configs, workdir=tmp_path, timeout=1500)
    got = tmp_path / results.path("pseudo_masks", variant="", method="released")
    assert sorted(p.stem for p in got.glob("*.png")) == train_aug
    assert all(np.array_equal(read_label_png(got / f"{i}.png"), masks[i]) for i in train_aug[:5])
    miou = pd.read_csv(tmp_path / results.path("table", table="miou")).set_index(["method", "stage"])
    train = read_id_list(prepared / "lists/train.txt")
    expected = evaluate_dirs(got, prepared / "SegmentationClassAug", train, 7).miou()
    assert miou.loc[("released", "pseudo"), "mIoU"] == round(100 * expected, 2)
    assert ("released", "deeplab") in miou.index and ("released", "pseudo_crf") in miou.index


@pytest.mark.slow
def test_a_release_missing_an_id_stops_naming_it(tmp_path):
    snakemake("resources/synthetic/prepared", "--cores", "2", "--configfile", str(TINY), workdir=tmp_path)
    prepared = tmp_path / "resources/synthetic/prepared"
    train_aug = read_id_list(prepared / "lists/train_aug.txt")
    write_release(prepared, tmp_path / "release.zip", train_aug[1:])
    (tmp_path / "released.yaml").write_text(yaml.safe_dump({
        "methods": ["released"], "deeplab": {"methods": []},
        "pseudo_masks": {"released_archive": str(tmp_path / "release.zip")}}))
    proc = snakemake(results.path("pseudo_masks", variant="", method="released"), "--cores", "1", "--configfile",
                     str(TINY), str(tmp_path / "released.yaml"), workdir=tmp_path, check=False)
    log = (tmp_path / "logs/import_released_masks/released.log").read_text()
    assert proc.returncode != 0 and f"lacks 1 of {len(train_aug)} ids (e.g. {train_aug[0]})" in log
    assert not (tmp_path / results.path("pseudo_masks", variant="", method="released")).exists()


def _release(tmp_path, masks: dict[str, np.ndarray]):
    """Images, an id list and a release zip (nested two levels) of `masks`, written by the test."""
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for i, m in masks.items():
        Image.fromarray(np.zeros((*m.shape, 3), np.uint8)).save(images / f"{i}.jpg")
    ids = tmp_path / "train_aug.txt"
    ids.write_text("".join(f"{i}\n" for i in masks))
    archive = tmp_path / "release.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i, m in masks.items():
            from io import BytesIO

            buf = BytesIO()
            Image.fromarray(m, mode="L").save(buf, format="PNG")
            zf.writestr(f"EPS/PseudoMasks/{i}.png", buf.getvalue())
    return archive, images, ids


@pytest.mark.parametrize("users_own", [True, False])
def test_a_bad_released_mask_is_named_as_the_archive_holds_it(tmp_path, users_own):
    """Not by the job's temporary copy, and with the archive's fix, not a rerun of a workflow rule."""
    from wsss.config.load import load_config
    from wsss.config.settings import released_archive_fix
    from wsss.core.io import BadInputError
    from wsss.stages.released_masks import import_released_masks

    good, bad = np.zeros((4, 5), np.uint8), np.full((4, 5), 9, np.uint8)  # 9 > the 3 classes
    archive, images, ids = _release(tmp_path, {"a": good, "b": bad})
    config = load_config()
    config["pseudo_masks"]["released_archive"] = str(archive) if users_own else None
    fix = released_archive_fix(config)
    with pytest.raises(BadInputError) as err:
        import_released_masks(archive, images, ids, 3, tmp_path / "out", fix=fix)
    text = str(err.value)
    assert f"{archive}:EPS/PseudoMasks/b.png: holds label 9" in text
    assert ".tmp" not in text and "make_pseudo_masks" not in text and not (tmp_path / "out").exists()
    if users_own:
        assert f"replace {archive} (pseudo_masks.released_archive)" in text and "download_weights" not in text
    else:
        assert "re-download it with `snakemake --forcerun download_weights`" in text


@pytest.mark.parametrize("users_own", [True, False])
def test_a_release_missing_an_id_says_how_to_get_another(tmp_path, users_own):
    from wsss.config.load import load_config
    from wsss.config.settings import released_archive_fix
    from wsss.core.io import BadInputError
    from wsss.stages.released_masks import import_released_masks

    archive, images, ids = _release(tmp_path, {"a": np.zeros((4, 5), np.uint8)})
    ids.write_text("a\nmissing\n")
    config = load_config()
    config["pseudo_masks"]["released_archive"] = str(archive) if users_own else None
    with pytest.raises(BadInputError) as err:
        import_released_masks(archive, images, ids, 3, tmp_path / "out", fix=released_archive_fix(config))
    text = str(err.value)
    assert "lacks 1 of 2 ids (e.g. missing)" in text
    assert ("(pseudo_masks.released_archive)" in text) == users_own
    assert ("--forcerun download_weights" in text) == (not users_own)
