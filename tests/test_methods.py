"""The method registry: records, per-method params, and a method added from outside the package."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY, snakemake
from wsss import methods
from wsss.pseudo_masks import pseudo_mask

PLUGINS = Path(__file__).parent / "plugins"


def test_builtin_records_say_what_each_method_reads():
    assert list(methods.METHODS) == ["cam", "cam_sal", "eps", "gt"]
    assert methods.method("cam_sal").classifier == "cam" and methods.method("cam_sal").needs_saliency
    assert methods.method("eps").maps_have_probs and not methods.method("cam").maps_have_probs
    assert methods.method("gt").is_ground_truth and methods.pseudo_mask_methods() == ["cam", "cam_sal", "eps"]
    assert methods.classifier("eps").trains_on_saliency and not methods.classifier("cam").trains_on_saliency
    with pytest.raises(ValueError, match=r"^unknown method 'nope'; registered: cam, cam_sal, eps, gt$"):
        methods.method("nope")
    with pytest.raises(ValueError, match=r"^unknown classifier 'nope'; registered: cam, eps$"):
        methods.classifier("nope")


def test_classifier_params_drop_other_classifiers_keys():
    section = {"backbone": "small", "tau": 0.2, "lam": 0.5, "sal_warmup": 0, "skip_unclaimed": True,
               "train": {"iterations": 4, "threads": 2, "runtime": 5}, "infer": {"scales": [1.0]}}
    cam = methods.classifier_train_params(section, "cam")
    # the bug this fixes: skip_unclaimed (an EPS key) used to reach the CAM classifier's params
    assert set(cam) == {"backbone", "train"} and cam["train"] == {"iterations": 4}
    assert methods.classifier_train_params(section, "eps")["skip_unclaimed"] is True
    infer = {"scales": {"eps": [1.0, 2.0]}, "flip": False, "threads": 1}
    assert methods.classifier_infer_params(infer, "eps") == {"scales": [1.0, 2.0], "flip": False}
    assert methods.classifier_infer_params(infer, "cam")["scales"] == [0.5, 1.0, 1.5, 2.0]  # the paper's
    assert methods.crf_unary({}, "eps") == "probs" and methods.crf_unary({"eps": "labels"}, "eps") == "labels"
    assert methods.crf_unary("probs", "cam") == "probs"
    # import_classifier's files are not training params; a section without `train` gives an empty one
    assert "checkpoint" not in methods.classifier_train_params({**section, "checkpoint": {"eps": "x.pth"}}, "eps")
    assert methods.classifier_train_params({"backbone": "small"}, "cam") == {"backbone": "small", "train": {}}
    # flip given per classifier: a classifier not named gets the paper's (flip on)
    assert methods.classifier_infer_params({"scales": [1.0], "flip": {"eps": False}}, "cam") == \
        {"scales": [1.0], "flip": True}


def test_register_records_and_load_plugins(monkeypatch):
    saved = dict(methods.METHODS), dict(methods.CLASSIFIERS)
    try:
        record = methods.register_classifier(methods.Classifier("stub", False, False, (), "wsss.losses:cam_step"))
        assert methods.CLASSIFIERS["stub"] is record
        with pytest.raises(ValueError, match=r"^method 'orphan' reads classifier 'nowhere', which is not "
                                             r"registered \(\['cam', 'eps', 'stub'\]\)$"):
            methods.register_method(methods.Method("orphan", "orphan", "nowhere"))
        assert "orphan" not in methods.METHODS
        on_stub = methods.register_method(methods.Method("on_stub", "on stub", "stub"))
        truth = methods.register_method(methods.Method("truth", "truth", None))  # no classifier: a mask source
        assert methods.METHODS["on_stub"] is on_stub and methods.METHODS["truth"] is truth
        # WSSS_PLUGINS: comma-separated module names, blanks ignored; each is imported and registers
        monkeypatch.syspath_prepend(str(PLUGINS))
        monkeypatch.delitem(sys.modules, "toy_method", raising=False)
        monkeypatch.setenv("WSSS_PLUGINS", " toy_method , ,")
        methods._load_plugins()
        assert methods.METHODS["toy"].pseudo_mask == "toy_method:lower_half_background"
        monkeypatch.delenv("WSSS_PLUGINS")
        methods._load_plugins()  # none named: nothing to import
    finally:
        for registry, before in zip((methods.METHODS, methods.CLASSIFIERS), saved):
            registry.clear()
            registry.update(before)


def test_mask_rules_name_their_bad_inputs_and_write_uint8_labels():
    from wsss.io import BadInputError
    from wsss.methods.cam import voc_labels

    labels = voc_labels(np.array([4, 0]), np.array([[0, 1, 2]]))
    assert labels.dtype == np.uint8 and labels.tolist() == [[0, 5, 1]]
    assert voc_labels(np.array([4, 0]), np.array([[0, 1, 2]]), background_at_end=True).tolist() == [[5, 1, 0]]
    data = {"classes": np.array([1]), "maps": np.ones((1, 2, 2), np.float32)}
    with pytest.raises(BadInputError, match=r"^pseudo_masks\.eps_rule is official but these maps were not made by "
                                            r"the official protocol; rerun infer_cams \(snakemake --forcerun "
                                            r"infer_cams\)$"):
        pseudo_mask("eps", data, {"eps_rule": "official", "threshold": 0.2})
    with pytest.raises(BadInputError, match=r"^this map file has no 'probs': it was not made by a classifier with a "
                                            r"background map; make eps pseudo-masks from results/cams/eps$"):
        pseudo_mask("eps", data, {"eps_rule": "argmax"})
    params = {"threshold": 0.2, "saliency_threshold": 0.5}
    with pytest.raises(BadInputError, match=r"^cam_sal pseudo-masks need saliency maps \(results/saliency/maps\)$"):
        pseudo_mask("cam_sal", data, params)
    with pytest.raises(BadInputError, match=r"^saliency map \(3, 3\) and CAM \(2, 2\) differ in size; re-run "
                                            r"infer_saliency and infer_cams \(snakemake --forcerun infer_cams\)$"):
        pseudo_mask("cam_sal", data, params, np.ones((3, 3), np.float32))


def test_pseudo_mask_dispatches_through_the_registry():
    data = {"classes": np.array([1]), "maps": np.array([[[0.9, 0.1]]], np.float32),
            "probs": np.array([[[0.2, 0.1]], [[0.8, 0.9]]], np.float32)}
    assert pseudo_mask("cam", data, {"threshold": 0.5}).tolist() == [[2, 0]]
    assert pseudo_mask("eps", data, {}).tolist() == [[0, 0]]
    with pytest.raises(ValueError, match="ground truth"):
        pseudo_mask("gt", data, {})


def test_a_registered_toy_method_runs_through_the_dag(tmp_path, monkeypatch):
    """WSSS_PLUGINS registers a method; the DAG then plans it end to end from the config alone."""
    env = {"WSSS_PLUGINS": "toy_method", "PYTHONPATH": os.pathsep.join([str(PLUGINS), *sys.path])}
    monkeypatch.setattr(os, "environ", {**os.environ, **env})
    proc = snakemake("-n", "--configfile", str(TINY), "--config", "methods=[cam,toy]", "deeplab={methods: [toy]}",
                     workdir=tmp_path)
    plan = proc.stdout
    assert "results/pseudo_masks/toy" in plan and "results/deeplab/toy/model.pt" in plan
    assert "results/pseudo_masks_crf/toy" in plan and "results/eval/pseudo/toy/miou.json" in plan
    # toy reads the cam classifier's maps: no eps classifier is trained
    assert "results/classifier/cam/model.pt" in plan and "results/classifier/eps/model.pt" not in plan


@pytest.mark.slow
def test_a_registered_toy_method_runs_to_the_tables(tmp_path, monkeypatch):
    """The toy method for real on the tiny config: its mask function writes its pseudo-masks, which
    go through the CRF, DeepLab and the mIoU table like a built-in method's."""
    import pandas as pd

    from wsss.io import read_id_list, read_label_png
    from wsss.metrics.confusion_matrix import ConfusionMatrix

    env = {"WSSS_PLUGINS": "toy_method", "PYTHONPATH": os.pathsep.join([str(PLUGINS), *sys.path])}
    monkeypatch.setattr(os, "environ", {**os.environ, **env})
    snakemake("results/tables/miou.csv", "--cores", "2", "--resources", "gpu=0", "--configfile", str(TINY),
              "--config", "methods=[cam,toy]", "deeplab={methods: [toy]}", workdir=tmp_path)
    prep = tmp_path / "resources/synthetic/prepared"
    ids = read_id_list(prep / "lists/train_aug.txt")
    cam, toy = tmp_path / "results/pseudo_masks/cam", tmp_path / "results/pseudo_masks/toy"
    assert sorted(p.stem for p in toy.glob("*.png")) == sorted(ids)
    lower_half_fg = 0
    for i in ids:
        c, t = read_label_png(cam / f"{i}.png"), read_label_png(toy / f"{i}.png")
        half = c.shape[0] // 2
        # exactly lower_half_background of the same maps: the cam mask above, background below
        np.testing.assert_array_equal(t[:half], c[:half])
        assert not t[half:].any()
        lower_half_fg += int(c[half:].any())
    assert lower_half_fg > 0  # the rule changed masks, so toy's rows are not cam's
    table = pd.read_csv(tmp_path / "results/tables/miou.csv")
    toy_rows = table[table["method"] == "toy"].set_index("stage")
    assert list(toy_rows.index) == ["pseudo", "pseudo_crf", "deeplab", "deeplab_crf"]
    # the pseudo row is the mIoU of the toy masks on the train split's ground truth
    cm = ConfusionMatrix(len(read_id_list(prep / "classes.txt")) + 1)
    for i in read_id_list(prep / "lists/train.txt"):
        cm.update(read_label_png(prep / f"SegmentationClassAug/{i}.png"), read_label_png(toy / f"{i}.png"), i)
    assert toy_rows.loc["pseudo", "mIoU"] == pytest.approx(round(100 * cm.miou(), 2), abs=1e-9)
    cam_pseudo = table[(table["method"] == "cam") & (table["stage"] == "pseudo")]["mIoU"].item()
    assert toy_rows.loc["pseudo", "mIoU"] != cam_pseudo
    assert (tmp_path / "results/deeplab/toy/model.pt").exists()
    assert sorted(p.stem for p in (tmp_path / "results/pseudo_masks_crf/toy").glob("*.png")) == sorted(ids)


def test_an_unregistered_method_stops_before_any_job(tmp_path):
    proc = snakemake("-n", "--configfile", str(TINY), "--config", "methods=[cam,nope]", workdir=tmp_path, check=False)
    assert proc.returncode != 0
    assert "unknown method or classifier" in proc.stdout + proc.stderr and "'nope'" in proc.stdout + proc.stderr


def test_methods_of_one_classifier_share_one_probs_crf(tmp_path):
    """With the `probs` unary the CRF reads only the classifier's maps, so cam_sal's CRF masks are
    cam's (hard-linked, one refine_crf job); with `labels` each pseudo-mask is refined on its own."""
    def crf_jobs(unary):
        plan = snakemake("-n", "--configfile", str(TINY), "--config", f"crf={{unary: {unary}}}",
                         workdir=tmp_path / unary).stdout
        return {m for m in ("cam", "cam_sal", "eps") if f"results/shards/pseudo_masks_crf/{m}/0" in plan}, plan
    shared, plan = crf_jobs("probs")
    assert shared == {"cam", "eps"} and "results/pseudo_masks_crf/cam_sal" in plan
    own, _ = crf_jobs("labels")
    assert own == {"cam", "cam_sal", "eps"}
