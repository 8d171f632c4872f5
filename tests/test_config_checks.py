"""Config at load time: --config strings coerced by the schema, and the checks before any job."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from snakemake.cli import parse_config

from conftest import REPO, TINY, snakemake
from wsss.config.load import (
    ConfigError,
    check_classes,
    check_config,
    check_device,
    check_input_files,
    coerce_config,
    load_config,
)
from wsss.core.io import BadInputError

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def test_snakemake_parses_nested_values_as_strings_and_coerce_fixes_them():
    parsed = parse_config(['classifier={"tau":0.3,"width":"8","pretrained":null,"train":{"flip":false}}'])
    assert parsed["classifier"]["tau"] == "0.3"  # what Snakemake 9 hands the Snakefile
    coerce_config(parsed, SCHEMA)
    cls = parsed["classifier"]
    assert cls["tau"] == 0.3 and cls["width"] == 8 and cls["pretrained"] is None
    assert cls["train"]["flip"] is False


def test_coerce_recurses_through_arrays_oneof_and_leaves_strings():
    schema = {"type": "object", "properties": {
        "xs": {"type": "array", "items": {"type": "number"}},
        "either": {"oneOf": [{"type": "array", "items": {"type": "integer"}},
                             {"type": "object", "properties": {"cam": {"type": "number"}}}]},
        "name": {"type": ["string", "null"]},
        "flag": {"type": "boolean"},
        "n": {"type": ["integer", "null"]}}}
    cfg = {"xs": ["1", "2.5", "1e-3"], "either": {"cam": "0.25"}, "name": "0.3", "flag": "true", "n": "null"}
    coerce_config(cfg, schema)
    assert cfg == {"xs": [1, 2.5, 0.001], "either": {"cam": 0.25}, "name": "0.3", "flag": True, "n": None}
    cfg = {"either": ["3", "4"], "flag": "maybe"}
    coerce_config(cfg, schema)
    assert cfg == {"either": [3, 4], "flag": "maybe"}  # unconvertible: left for validate() to report


def test_the_whole_schema_coerces_the_tiny_config_unchanged():
    cfg = yaml.safe_load(TINY.read_text())
    before = copy.deepcopy(cfg)
    assert coerce_config(cfg, SCHEMA) == before


def test_dry_run_accepts_a_nested_number_from_the_command_line(tmp_path):
    proc = snakemake("-n", "--configfile", str(TINY), "--config", 'classifier={"tau":0.3}', workdir=tmp_path)
    assert "train_classifier" in proc.stdout
    # the value reaches validation as a number: out of range it is reported as a number, not a string
    proc = snakemake("-n", "--configfile", str(TINY), "--config", 'classifier={"tau":1.5}', workdir=tmp_path,
                     check=False)
    assert proc.returncode != 0 and "1.5 is greater than the maximum of 1" in proc.stdout + proc.stderr


def test_cuda_device_without_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (msg,) = check_device("cuda")
    assert msg.startswith("device: cuda") and "--config device=cpu" in msg
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_device("cuda:1") == []
    (msg,) = check_device("cuda:2")
    assert "has 2 CUDA device(s)" in msg and "--config device=cpu" in msg
    assert check_device("cpu") == [] and check_device("auto") == []


def test_missing_input_files_name_key_and_path(tmp_path):
    cfg = {"saliency": {"source": "pfan", "checkpoint": "nope/pfan.pt", "model": {"backbone_weights": None}},
           "classifier": {"pretrained": "IMAGENET1K_V2"},  # a torchvision name, not a path
           "deeplab": {"init_weights": str(tmp_path / "missing.pth")}}
    problems = check_input_files(cfg, tmp_path)
    assert len(problems) == 2
    assert problems[0].startswith("saliency.checkpoint: nope/pfan.pt does not exist")
    assert f"deeplab.init_weights: {tmp_path / 'missing.pth'} does not exist" in problems[1]
    cfg["classifier"]["pretrained"] = "weights/resnet50.pth"
    assert any(p.startswith("classifier.pretrained: weights/resnet50.pth") for p in check_input_files(cfg, tmp_path))
    # following the hint (create the file / point at it) clears the problem
    (tmp_path / "nope").mkdir()
    (tmp_path / "nope" / "pfan.pt").write_bytes(b"x")
    (tmp_path / "missing.pth").write_bytes(b"x")
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "resnet50.pth").write_bytes(b"x")
    assert check_input_files(cfg, tmp_path) == []
    # a classifier's checkpoint replaces its training: on a finished run a missing one would plan nothing
    cfg["classifier"]["checkpoint"] = {"eps": "mine/eps.pth", "cam": "weights/resnet50.pth"}
    assert check_input_files(cfg, tmp_path) == [
        f"classifier.checkpoint.eps: mine/eps.pth does not exist (resolved to {tmp_path / 'mine/eps.pth'}; no rule "
        "can make it); set classifier.checkpoint.eps to a model file written by train_classifier or an official "
        "EPS checkpoint_cls.pth, or remove the entry to train eps"]


def test_precomputed_dir_must_be_a_folder(tmp_path):
    cfg = {"saliency": {"source": "precomputed", "precomputed_dir": "maps", "checkpoint": "unused.pt"}}
    (msg,) = check_input_files(cfg, tmp_path)
    assert msg.startswith("saliency.precomputed_dir: maps does not exist")
    (tmp_path / "maps").mkdir()
    assert check_input_files(cfg, tmp_path) == []


def test_classes_disagreeing_with_prepared_data(tmp_path):
    cfg = {"dataset": {"root": "resources/ds", "classes": ["a", "b"]}}
    assert check_classes(cfg, tmp_path) == []  # nothing prepared yet
    prepared = tmp_path / "resources/ds/prepared"
    prepared.mkdir(parents=True)
    (prepared / "classes.txt").write_text("a\nc\n")
    (msg,) = check_classes(cfg, tmp_path)
    assert "snakemake --forcerun prepare_dataset" in msg and str(prepared / "classes.txt") in msg
    (prepared / "classes.txt").write_text("a\nb\n")
    assert check_classes(cfg, tmp_path) == []


def test_check_config_raises_one_error_listing_all(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = load_config()  # the paper's setting, with two mistakes
    cfg["device"], cfg["deeplab"]["init_weights"] = "cuda", "x.pth"
    with pytest.raises(ConfigError) as err:
        check_config(cfg, tmp_path)
    assert isinstance(err.value, BadInputError)
    assert "2 problem(s)" in str(err.value) and re.search(r"- device: cuda.*\n  - deeplab.init_weights", str(err.value))
    assert len(check_config(cfg, tmp_path, raise_error=False)) == 2
