"""wsss.config.plan: which jobs a config asks for and their order, decided without Snakemake."""

from __future__ import annotations

import pytest

from conftest import REPO, TINY
from wsss.config import plan
from wsss.config.load import load_config
from wsss.core import results
from wsss.methods import METHODS, Method


@pytest.fixture
def config():
    return load_config(TINY)


def test_used_and_imported_classifiers(config):
    assert plan.used_classifiers(config) == ["cam", "eps"]
    config["methods"] = ["cam_sal"]
    assert plan.used_classifiers(config) == ["cam"]
    config["classifier"]["checkpoint"] = {"eps": "x.pth"}
    assert plan.imported_classifiers(config) == ["eps"]


def test_eval_methods_and_splits(config):
    config["deeplab"]["methods"] = ["eps", "gt"]
    assert plan.eval_methods(config, "pseudo_crf") == ["cam", "cam_sal", "eps"]
    assert plan.eval_methods(config, "deeplab_crf") == ["eps", "gt"]
    assert plan.eval_split(config, "pseudo") == "train" and plan.eval_split(config, "deeplab") == "val"


def test_tables_follow_what_the_source_provides(config):
    assert plan.tables(config) == ["miou", "boundary", "confusion_ratio"]
    voc = load_config(REPO / "config" / "voc12.yaml")
    assert plan.tables(voc) == ["miou", "boundary", "confusion_ratio"]  # PASCAL-Context's sums are defaults
    voc["evaluation"]["context_md5"] = None
    assert plan.tables(voc) == ["miou", "boundary"]


def test_crf_split_and_sources(config, monkeypatch):
    assert plan.crf_split(config) == "train_aug"  # tiny.yaml: DeepLab trains on the CRF masks
    config["deeplab"]["train_on_crf"] = False
    assert plan.crf_split(config) == "train"
    config["crf"]["unary"] = "probs"
    # eps reads its own maps; cam_sal's unary carries its saliency gating: each is refined on its own
    assert [plan.crf_source(config, m) for m in ("cam", "cam_sal", "eps")] == ["cam", "cam_sal", "eps"]
    # an ungated method of cam's maps has exactly cam's probs unary: it takes cam's CRF masks
    monkeypatch.setitem(METHODS, "cam_copy", Method("cam_copy", "copy", "cam", pseudo_mask="wsss.methods.cam:cam_mask"))
    config["methods"] = ["cam_copy", "cam", "eps"]
    assert plan.crf_source(config, "cam") == "cam_copy" and plan.crf_source(config, "cam_copy") == "cam_copy"
    config["crf"]["unary"] = "labels"  # the pseudo-mask is the unary: no sharing
    assert plan.crf_source(config, "cam") == "cam"


def test_the_saliency_chain_runs_first(config):
    assert plan.chain_priority("eps") == 10 and plan.chain_priority("cam") == 0 and plan.chain_priority(None) == 0
    assert plan.method_priority("cam_sal") == 0 and plan.method_priority("eps") == 10
    assert plan.deeplab_priority("cam") == 5 and plan.deeplab_priority("eps") == 10
    assert plan.crf_priority(config, "eps") == 10  # tiny.yaml: the CRF is on DeepLab's path
    config["deeplab"]["train_on_crf"] = False
    assert plan.crf_priority(config, "eps") == 0
    # a CRF that reads map shards deleted once read goes first when they are windowed (more shards than in flight)
    config["crf"]["unary"], config["shards"] = "probs", 16
    config["classifier"]["infer"]["keep_maps"] = False  # tiny.yaml keeps them for the tests that read them
    assert plan.crf_priority(config, "eps") == 10 and plan.crf_priority(config, "cam") == 0
    config["classifier"]["infer"]["keep_maps"] = True
    assert plan.crf_priority(config, "eps") == 0


def test_map_shards_wait_for_the_readers_of_an_earlier_shard(config):
    """keep_maps false: infer_cams of shard s waits for every reader of shard s - maps_in_flight."""
    coco = load_config(REPO / "config" / "coco14.yaml")
    assert not plan.keep_maps(coco) and coco["classifier"]["infer"]["maps_in_flight"] == 2
    assert [plan.map_window(coco, s) for s in (0, 1, 2, 15)] == [None, None, 0, 13]
    # COCO: eps's CRF reads its maps (probs unary); cam and cam_sal refine their labels
    assert plan.map_consumers(coco, "eps") == {"pseudo": ["eps"], "sweep": [], "crf": ["eps"]}
    assert plan.map_consumers(coco, "cam") == {"pseudo": ["cam", "cam_sal"], "sweep": ["cam"], "crf": []}
    coco["crf"]["unary"] = "probs"  # cam_sal's probs unary is gated, so its own; cam reads cam's maps
    assert plan.map_consumers(coco, "cam")["crf"] == ["cam", "cam_sal"]
    coco["evaluation"]["tables"]["miou"] = ["pseudo"]  # no table reads the CRF masks: no CRF to wait for
    assert plan.map_consumers(coco, "eps")["crf"] == []
    coco["classifier"]["infer"]["keep_maps"] = True
    assert plan.map_window(coco, 15) is None


def test_evaluation_shards_plan_one_job_per_shard(tmp_path):
    """evaluation.shards splits each (stage, method) evaluation into evaluate_shard jobs that one job sums."""
    from conftest import snakemake

    plan = snakemake("-n", results.path("eval_miou", variant="", stage="pseudo", method="eps"), "--configfile",
                     str(TINY), "--config", "evaluation={shards: 3}", workdir=tmp_path).stdout
    prefix = "output: results/eval/pseudo/eps/shards/"
    shards = {line.split("shards/")[1] for line in plan.splitlines() if prefix in line}
    assert shards == {"miou_0.npz", "miou_1.npz", "miou_2.npz"} and plan.count("rule evaluate_miou:") == 1
    coco = load_config(REPO / "config" / "coco14.yaml")
    assert coco["evaluation"]["shards"] == coco["shards"] == 16
