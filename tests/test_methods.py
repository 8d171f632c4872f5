"""The method registry: records, per-method params, and a method added from outside the package."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY, snakemake
from wsss import methods
from wsss.config import settings
from wsss.config.load import load_config
from wsss.core import results
from wsss.stages.pseudo_masks import pseudo_mask

PLUGINS = Path(__file__).parent / "plugins"


def test_builtin_records_say_what_each_method_reads():
    assert list(methods.METHODS) == ["cam", "cam_sal", "eps", "gt", "released"]
    assert methods.table_order() == ["cam", "cam_sal", "eps", "released", "gt"]  # the upper bound last
    assert methods.method("released").classifier is None and not methods.method("released").is_ground_truth
    assert methods.method("cam_sal").classifier == "cam" and methods.method("cam_sal").needs_saliency
    assert methods.maps_have_probs(methods.method("eps")) and not methods.maps_have_probs(methods.method("cam"))
    assert methods.method("gt").is_ground_truth
    assert methods.pseudo_mask_methods() == ["cam", "cam_sal", "eps", "released"]
    assert methods.classifier("eps").trains_on_saliency and not methods.classifier("cam").trains_on_saliency
    with pytest.raises(ValueError, match=r"^unknown method 'nope'; registered: cam, cam_sal, eps, gt, released$"):
        methods.method("nope")
    with pytest.raises(ValueError, match=r"^unknown classifier 'nope'; registered: cam, eps$"):
        methods.classifier("nope")


def test_each_job_reads_its_own_keys_once():
    """wsss.config.settings trims a section once, for the rule's params and the job alike."""
    config = load_config(TINY)
    section = {"backbone": "small", "tau": 0.2, "lam": 0.5, "sal_warmup": 0, "skip_unclaimed": True,
               "head_dropout": 0.1, "train": {"iterations": 4}, "infer": {"scales": [1.0]}, "checkpoint": {}}
    cam = settings.classifier_training(section, methods.classifier("cam"))
    # skip_unclaimed (an EPS key) never reaches the CAM classifier: changing it never retrains CAM
    assert cam == {"model": {"backbone": "small"}, "train": {"iterations": 4}, "own": {"head_dropout": 0.1}}
    eps = settings.classifier_training(section, methods.classifier("eps"))
    assert eps["own"] == {"tau": 0.2, "lam": 0.5, "sal_warmup": 0, "skip_unclaimed": True}
    config["classifier"]["infer"] = {"scales": {"eps": [1.0, 2.0]}, "flip": False}
    assert settings.cam_inference(config, methods.classifier("eps")) == {"scales": [1.0, 2.0], "flip": False}
    assert settings.cam_inference(config, methods.classifier("cam"))["scales"] == [0.5, 1.0, 1.5, 2.0]  # the paper's
    config["pseudo_masks"]["eps_rule"] = "official"
    assert settings.cam_inference(config, methods.classifier("eps"))["official"] is True
    assert "official" not in settings.cam_inference(config, methods.classifier("cam"))
    assert settings.pseudo_mask_params(config, methods.method("cam")) == {"threshold": 0.7}
    assert set(settings.pseudo_mask_params(config, methods.method("cam_sal"))) == {"threshold", "saliency_threshold"}
    config["crf"]["unary"] = {}
    assert settings.crf_unary(config, methods.method("eps")) == "probs"
    assert settings.crf_unary(config, methods.method("cam")) == "labels"
    # a unary is handed what it reads: labels its confidence, probs the CAM threshold (and cam_sal's gate)
    config["crf"]["unary"] = {"eps": "labels"}
    labels = settings.crf_refinement(config, methods.method("eps"))
    assert labels["unary"] == "labels" and labels["gt_prob"] == config["crf"]["gt_prob"]
    assert "bg_threshold" not in labels and "saliency_threshold" not in labels
    config["crf"]["unary"] = {"cam_sal": "probs"}
    probs = settings.crf_refinement(config, methods.method("cam_sal"))
    assert (probs["unary"], probs["bg_threshold"], probs["saliency_threshold"]) == ("probs", 0.7, 0.5)
    assert "gt_prob" not in probs
    assert "gt_prob" not in settings.deeplab_inference(config)["crf"]
    assert "methods" not in settings.deeplab_training(config) and "init_weights" in settings.deeplab_training(config)


def test_register_records_and_load_plugins(monkeypatch):
    saved = dict(methods.METHODS), dict(methods.CLASSIFIERS)
    try:
        record = methods.register_classifier(methods.Classifier("stub", False, False, "wsss.methods.cam_loss:cam_step"))
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
        methods.load_plugins()
        assert methods.METHODS["toy"].pseudo_mask == "toy_method:lower_half_background"
        monkeypatch.delenv("WSSS_PLUGINS")
        methods.load_plugins()  # none named: nothing to import
    finally:
        for registry, before in zip((methods.METHODS, methods.CLASSIFIERS), saved):
            registry.clear()
            registry.update(before)


def test_mask_rules_name_their_bad_inputs_and_write_uint8_labels():
    from wsss.core.io import BadInputError
    from wsss.methods.cam import labels_from_argmax

    labels = labels_from_argmax(np.array([4, 0]), np.array([[0, 1, 2]]))
    assert labels.dtype == np.uint8 and labels.tolist() == [[0, 5, 1]]
    assert labels_from_argmax(np.array([4, 0]), np.array([[0, 1, 2]]), background_at_end=True).tolist() == [[5, 1, 0]]
    data = {"classes": np.array([1]), "maps": np.ones((1, 2, 2), np.float32)}
    with pytest.raises(BadInputError, match=r"^pseudo_masks\.eps_rule is official but these maps were not made by "
                                            r"the official protocol; rerun infer_cams \(snakemake --forcerun "
                                            r"infer_cams\)$"):
        pseudo_mask(methods.method("eps"), data, {"eps_rule": "official", "threshold": 0.2})
    with pytest.raises(BadInputError, match=r"^this map file has no 'probs': it was not made by a classifier with a "
                                            r"background map; make eps pseudo-masks from results/cams/eps$"):
        pseudo_mask(methods.method("eps"), data, {"eps_rule": "argmax"})
    params = {"threshold": 0.2, "saliency_threshold": 0.5}
    with pytest.raises(BadInputError, match=r"^cam_sal pseudo-masks need saliency maps \(results/saliency/maps\)$"):
        pseudo_mask(methods.method("cam_sal"), data, params)
    with pytest.raises(BadInputError, match=r"^saliency map \(3, 3\) and CAM \(2, 2\) differ in size; re-run "
                                            r"infer_saliency and infer_cams \(snakemake --forcerun infer_cams\)$"):
        pseudo_mask(methods.method("cam_sal"), data, params, np.ones((3, 3), np.float32))


def test_pseudo_mask_dispatches_through_the_registry():
    data = {"classes": np.array([1]), "maps": np.array([[[0.9, 0.1]]], np.float32),
            "probs": np.array([[[0.2, 0.1]], [[0.8, 0.9]]], np.float32)}
    assert pseudo_mask(methods.method("cam"), data, {"threshold": 0.5}).tolist() == [[2, 0]]
    assert pseudo_mask(methods.method("eps"), data, {}).tolist() == [[0, 0]]
    with pytest.raises(ValueError, match="ground truth"):
        pseudo_mask(methods.method("gt"), data, {})


def test_a_registered_toy_method_runs_through_the_dag(tmp_path, monkeypatch):
    """WSSS_PLUGINS registers a method; the DAG then plans it end to end from the config alone."""
    env = {"WSSS_PLUGINS": "toy_method", "PYTHONPATH": os.pathsep.join([str(PLUGINS), *sys.path])}
    monkeypatch.setattr(os, "environ", {**os.environ, **env})
    proc = snakemake("-n", "--configfile", str(TINY), "--config", "methods=[cam,toy]", "deeplab={methods: [toy]}",
                     workdir=tmp_path)
    plan = proc.stdout
    assert results.path("pseudo_masks", variant="", method="toy") in plan
    assert results.path("deeplab_model", method="toy") in plan
    assert results.path("pseudo_masks_crf", method="toy") in plan
    assert results.path("eval_miou", variant="", stage="pseudo", method="toy") in plan
    # toy reads the cam classifier's maps: no eps classifier is trained
    assert results.path("classifier_model", variant="", classifier="cam") in plan
    assert results.path("classifier_model", variant="", classifier="eps") not in plan


@pytest.mark.slow
def test_a_registered_toy_method_runs_to_the_tables(tmp_path, monkeypatch):
    """The toy method for real on the tiny config: its mask function writes its pseudo-masks, which
    go through the CRF, DeepLab and the mIoU table like a built-in method's."""
    import pandas as pd

    from wsss.core.io import read_id_list, read_label_png
    from wsss.metrics.confusion_matrix import ConfusionMatrix

    env = {"WSSS_PLUGINS": "toy_method", "PYTHONPATH": os.pathsep.join([str(PLUGINS), *sys.path])}
    monkeypatch.setattr(os, "environ", {**os.environ, **env})
    snakemake(results.path("table", table="miou"), "--cores", "2", "--resources", "gpu=0", "--configfile", str(TINY),
              "--config", "methods=[cam,toy]", "deeplab={methods: [toy]}", workdir=tmp_path)
    prep = tmp_path / "resources/synthetic/prepared"
    ids = read_id_list(prep / "lists/train_aug.txt")
    cam = tmp_path / results.path("pseudo_masks", variant="", method="cam")
    toy = tmp_path / results.path("pseudo_masks", variant="", method="toy")
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
    table = pd.read_csv(tmp_path / results.path("table", table="miou"))
    toy_rows = table[table["method"] == "toy"].set_index("stage")
    assert list(toy_rows.index) == ["pseudo", "pseudo_crf", "deeplab", "deeplab_crf"]
    # the pseudo row is the mIoU of the toy masks on the train split's ground truth
    cm = ConfusionMatrix(len(read_id_list(prep / "classes.txt")) + 1)
    for i in read_id_list(prep / "lists/train.txt"):
        cm.update(read_label_png(prep / f"SegmentationClassAug/{i}.png"), read_label_png(toy / f"{i}.png"), i)
    assert toy_rows.loc["pseudo", "mIoU"] == pytest.approx(round(100 * cm.miou(), 2), abs=1e-9)
    cam_pseudo = table[(table["method"] == "cam") & (table["stage"] == "pseudo")]["mIoU"].item()
    assert toy_rows.loc["pseudo", "mIoU"] != cam_pseudo
    assert (tmp_path / results.path("deeplab_model", method="toy")).exists()
    crf = tmp_path / results.path("pseudo_masks_crf", method="toy")
    assert sorted(p.stem for p in crf.glob("*.png")) == sorted(ids)


def test_an_unregistered_method_stops_before_any_job(tmp_path):
    proc = snakemake("-n", "--configfile", str(TINY), "--config", "methods=[cam,nope]", workdir=tmp_path, check=False)
    assert proc.returncode != 0
    assert "unknown method or classifier" in proc.stdout + proc.stderr and "'nope'" in proc.stdout + proc.stderr


def test_cam_sal_has_a_crf_of_its_own_that_reads_the_saliency(tmp_path):
    """With the `probs` unary cam_sal's unary is cam's maps gated by the saliency (wsss.stages.crf), so it gets
    refine_crf jobs of its own that read the saliency maps (its CRF masks were once cam's,
    hard-linked); with `labels` each pseudo-mask is refined on its own."""
    import re

    def crf_jobs(unary):
        plan = snakemake("-n", "--configfile", str(TINY), "--config", f"crf={{unary: {unary}}}",
                         workdir=tmp_path / unary).stdout
        jobs = re.findall(r"rule refine_crf:\n\s+input: ([^\n]*)\n\s+output: results/shards/pseudo_masks_crf/(\w+)/0$",
                          plan, re.M)
        return {method: inputs.split(", ") for inputs, method in jobs}
    probs = crf_jobs("probs")
    assert set(probs) == {"cam", "cam_sal", "eps"}
    assert results.path("saliency_maps") in probs["cam_sal"]
    assert results.path("cam_shard", variant="", classifier="cam", shard=0) in probs["cam_sal"]
    assert results.path("saliency_maps") not in probs["cam"] + probs["eps"]
    labels = crf_jobs("labels")
    assert set(labels) == {"cam", "cam_sal", "eps"}
    assert not any(results.path("saliency_maps") in i for i in labels.values())
