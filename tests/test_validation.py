"""prepare_dataset checks every raw file: all problems in one error naming the files, nothing written,
and the stated fix (replace the file) makes the next run succeed."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from wsss.core import results
from wsss.core.hints import rerun_hint
from wsss.core.io import BadInputError, read_id_list
from wsss.data.sources.synthetic.generate import SyntheticConfig, synthesize_dataset
from wsss.data.sources.voc.prepare import prepare_dataset

CLASSES = ["train", "boat", "ball", "box", "kite", "star"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    synthesize_dataset(root / "VOCdevkit", root / "benchmark_RELEASE", root / "DUTS-TR", root / "context", CLASSES,
             SyntheticConfig(num_train=16, num_val=6, num_saliency=4))
    return root


@pytest.fixture
def raw(pristine, tmp_path):
    """A private copy of the raw layout to break (copies, not links: the test rewrites files)."""
    for name in ("VOCdevkit", "benchmark_RELEASE"):
        shutil.copytree(pristine / name, tmp_path / name)
    return tmp_path


def _run(raw, classes=CLASSES, processes=2):
    return prepare_dataset(raw / "VOCdevkit", raw / "benchmark_RELEASE", raw / "prepared", classes,
                           processes=processes)


def _no_output(raw):
    assert not (raw / "prepared").exists()
    assert not [p for p in raw.iterdir() if p.name.startswith(".prepared.")]  # no temp folder left


def _voc(raw):
    return raw / "VOCdevkit" / "VOC2012"


def _restore(pristine, raw, rel):
    shutil.copy2(pristine / rel, raw / rel)


def test_truncated_jpeg_is_caught_and_replacing_it_fixes_the_run(pristine, raw):
    ids = read_id_list(_voc(raw) / "ImageSets/Segmentation/val.txt")
    jpg = _voc(raw) / "JPEGImages" / f"{ids[0]}.jpg"
    data = jpg.read_bytes()
    jpg.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInputError) as err:
        _run(raw)
    msg = str(err.value)
    assert f"{jpg}: image does not decode" in msg and "1 problem(s)" in msg
    assert "`snakemake --forcerun extract_voc`" in msg and "synthesize_dataset" in msg
    _no_output(raw)
    _restore(pristine, raw, jpg.relative_to(raw))  # the fix the message states: replace the file
    assert _run(raw)["val"] == len(ids)


def test_all_problems_are_collected_first_ten_listed_with_total(pristine, raw):
    ids = read_id_list(_voc(raw) / "ImageSets/Segmentation/train.txt")
    ids += read_id_list(_voc(raw) / "ImageSets/Segmentation/val.txt")
    assert len(ids) >= 14
    masks = [_voc(raw) / "SegmentationClass" / f"{i}.png" for i in ids[:6]]
    for m in masks[:3]:  # RGB instead of palette
        Image.open(m).convert("RGB").save(m)
    for m in masks[3:5]:  # a value that is no class and not 255
        lab = np.array(Image.open(m))
        lab[0, 0] = 77
        im = Image.fromarray(lab, mode="P")
        im.putpalette(Image.open(m).getpalette())
        im.save(m)
    lab = np.array(Image.open(masks[5]))  # wrong size
    Image.fromarray(lab[:-4], mode="L").save(masks[5])
    jpgs = [_voc(raw) / "JPEGImages" / f"{i}.jpg" for i in ids[6:14]]
    for j in jpgs:  # not an image at all
        j.write_bytes(b"garbage")
    with pytest.raises(BadInputError) as err:
        _run(raw)
    msg = str(err.value)
    assert "14 problem(s)" in msg and "First 10:" in msg and "... and 4 more" in msg
    for m in masks[:3]:
        assert f"{m}: label PNG has mode RGB" in msg
    assert "holds label 77" in msg and "fix dataset.classes" in msg
    _no_output(raw)
    for path in masks + jpgs:
        _restore(pristine, raw, path.relative_to(raw))
    _run(raw)
    assert (raw / "prepared" / "labels.csv").exists()


def test_mask_size_must_match_image(pristine, raw):
    i = read_id_list(_voc(raw) / "ImageSets/Segmentation/val.txt")[0]
    m = _voc(raw) / "SegmentationClass" / f"{i}.png"
    img = Image.open(m)
    img.crop((0, 0, 40, 30)).save(m)
    with pytest.raises(BadInputError, match=rf"{m}: mask is 40x30 but its image is 64x64"):
        _run(raw, processes=1)
    _no_output(raw)


def test_listed_id_without_mask_or_image_is_named(pristine, raw):
    val = _voc(raw) / "ImageSets/Segmentation/val.txt"
    val.write_text(val.read_text() + "ghost_id\n")
    with pytest.raises(BadInputError) as err:
        _run(raw)
    msg = str(err.value)
    assert f"{_voc(raw) / 'JPEGImages' / 'ghost_id.jpg'}: image is missing" in msg
    assert "ghost_id.png: listed id has no mask" in msg
    _no_output(raw)


def test_corrupt_sbd_mat_is_named_with_the_sbd_rule(pristine, raw):
    sbd_ids = read_id_list(raw / "benchmark_RELEASE/dataset/train.txt")
    mat = raw / "benchmark_RELEASE/dataset/cls" / f"{sbd_ids[0]}.mat"
    mat.write_bytes(mat.read_bytes()[:50])
    with pytest.raises(BadInputError) as err:
        _run(raw)
    assert f"{mat}: not a readable SBD GTcls .mat" in str(err.value)
    assert "`snakemake --forcerun extract_sbd`" in str(err.value)
    _no_output(raw)
    _restore(pristine, raw, mat.relative_to(raw))
    _run(raw)


def test_id_with_a_space_names_the_list_and_line(pristine, raw):
    lst = _voc(raw) / "ImageSets/Segmentation/train.txt"
    lines = lst.read_text().splitlines()
    lines[2] = lines[2][:4] + " " + lines[2][4:]
    lst.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadInputError) as err:
        read_id_list(lst)
    assert f"{lst}: line 3 holds" in str(err.value)
    with pytest.raises(BadInputError, match=rf"{lst}: line 3 holds .* an id with whitespace"):
        _run(raw)
    _no_output(raw)
    _restore(pristine, raw, lst.relative_to(raw))
    _run(raw)


@pytest.mark.bench
def test_validation_of_the_default_size_is_fast(tmp_path):
    """The embedded default (1200 images of 64 px) is prepared, checks included, in seconds."""
    import time

    synthesize_dataset(tmp_path / "VOCdevkit", tmp_path / "benchmark_RELEASE", tmp_path / "DUTS-TR",
                       tmp_path / "context", CLASSES, SyntheticConfig(num_saliency=2))
    start = time.perf_counter()
    counts = _run(tmp_path)
    assert counts["train_aug"] + counts["val"] == 1200
    assert time.perf_counter() - start < 30


def test_rerun_hint_of_a_prepared_file_names_forcerun():
    assert "`snakemake --forcerun prepare_dataset`" in rerun_hint("resources/synthetic/prepared/labels.csv")


# literal paths, as an error message names them: the layout's patterns are what is under test
@pytest.mark.parametrize("path, rule", [
    ("resources/voc/prepared/SegmentationClassAug/x.png", "prepare_dataset"),
    ("/w/resources/voc/VOCdevkit/VOC2012/JPEGImages/x.jpg", "extract_voc"),
    ("resources/voc/benchmark_RELEASE/dataset/cls/x.mat", "extract_sbd"),
    ("results/saliency/maps/x.png", "infer_saliency"),
    ("results/saliency/maps/x.png", "import_precomputed_saliency"),
    ("results/cams/eps/x.npz", "infer_cams"),
    ("results/pseudo_masks/eps/x.png", "make_pseudo_masks"),
    ("results/pseudo_masks_crf/eps/x.png", "refine_crf"),
    ("results/classifier/eps/model.pt", "train_classifier"),
    ("results/deeplab/eps/model.pt", "train_segmentation"),
    ("results/deeplab/eps/pred_crf/x.png", "infer_segmentation"),
    ("results/ablation/tau-0.3/cams/eps/x.npz", "infer_cams"),
    ("results/ablation/saliency-centre_prior/pseudo_masks/eps/x.png", "make_pseudo_masks"),
    ("results/ablation/lam-0.1/classifier/eps/model.pt", "train_classifier"),
    ("results/ablation/saliency_maps/ground_truth/x.png", "ablation_saliency"),
    # derived from the results layout, wildcards filled from the path
    ("results/tables/miou.csv", "table_miou"),
    ("/w/results/tables/confusion_ratio.csv", "table_confusion_ratio"),
    ("results/tables/miou_per_class.csv", "table_miou"),
    ("results/tables/ablation_tau.csv", "table_ablation"),
    ("results/tables/cam_thresholds.csv", "cam_threshold_sweep"),
    ("results/shards/cams/eps/3/x.npz", "infer_cams"),
    ("results/ablation/tau-0.3/shards/pseudo_masks/eps/0/x.png", "make_pseudo_masks"),
    ("results/eval/pseudo_crf/eps/shards/boundary_1.npz", "evaluate_shard"),
    ("results/ablation/lam-0.1/eval/pseudo/eps/miou.json", "evaluate_miou"),
    ("results/figures/qualitative_pseudo.png", "figure_qualitative"),
])
def test_rerun_hint_maps_paths_to_rules(path, rule):
    assert f"`snakemake --forcerun {rule}`" in rerun_hint(path)


def test_readers_name_the_file_and_the_forcerun_command(tmp_path):
    from wsss.core.io import load_maps, read_image, read_label_png
    from wsss.core.model_files import load_model

    prep = tmp_path / "prepared"
    (prep / "SegmentationClassAug").mkdir(parents=True)
    bad = prep / "SegmentationClassAug" / "x.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(BadInputError, match=r"x\.png: cannot decode label PNG .*--forcerun prepare_dataset"):
        read_label_png(bad)
    with pytest.raises(BadInputError, match=r"y\.jpg: image is missing.*--forcerun prepare_dataset"):
        read_image(prep / "JPEGImages" / "y.jpg")
    with pytest.raises(BadInputError, match=r"z\.npz: map file is missing; .*--forcerun infer_cams"):
        load_maps(tmp_path / results.path("cams", variant="", classifier="eps") / "z.npz")
    model = tmp_path / results.path("classifier_model", variant="", classifier="eps")
    model.parent.mkdir(parents=True)
    model.write_bytes(b"truncated")
    with pytest.raises(BadInputError, match=r"model\.pt: cannot read model file .*--forcerun train_classifier"):
        load_model(model)
