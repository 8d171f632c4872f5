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
    with pytest.raises(ValueError, match="registered"):
        methods.method("nope")


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


def test_an_unregistered_method_stops_before_any_job(tmp_path):
    proc = snakemake("-n", "--configfile", str(TINY), "--config", "methods=[cam,nope]", workdir=tmp_path, check=False)
    assert proc.returncode != 0
    assert "unknown method or classifier" in proc.stdout + proc.stderr and "'nope'" in proc.stdout + proc.stderr


def test_cam_sal_has_a_crf_of_its_own_that_reads_the_saliency(tmp_path):
    """With the `probs` unary cam_sal's unary is cam's maps gated by the saliency (wsss.crf), so it gets
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
    assert "results/saliency/maps" in probs["cam_sal"] and "results/cams/cam" in probs["cam_sal"]
    assert "results/saliency/maps" not in probs["cam"] + probs["eps"]
    labels = crf_jobs("labels")
    assert set(labels) == {"cam", "cam_sal", "eps"} and not any("results/saliency/maps" in i for i in labels.values())
