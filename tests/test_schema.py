"""One source of config truth: the schema's defaults, the dataclasses bound to it, the generated
config/README.md, and config files that hold only changes to the defaults."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from conftest import REPO
from wsss.config import schema as config_readme
from wsss.config.load import load_config
from wsss.core import schema


def test_config_readme_is_generated_from_the_schema():
    expected = config_readme.config_readme(config_readme.README_CONFIGS)
    assert (REPO / "config" / "README.md").read_text() == expected, \
        "config/README.md is stale: run `.venv/bin/python -m wsss.config.schema`"


def _leaves(d, prefix=""):
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and v and not {"cam", "eps"} & set(v) and k not in ("context",):
            yield from _leaves(v, key)
        else:
            yield key, v


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "config").glob("*.yaml")))
def test_config_files_hold_only_changes_to_the_defaults(name):
    defaults = dict(_leaves(schema.section_defaults("")))
    text = (REPO / "config" / name).read_text()
    config = yaml.safe_load(text)
    jobs = schema.section_defaults("jobs")
    for rule, size in config.pop("jobs", {}).items():  # rule names: an entry differs from the default as a whole
        assert size != jobs.get(rule, jobs["default"]), f"{name}: jobs.{rule} repeats the default"
    for key, value in _leaves(config):
        assert key in defaults, f"{name}: {key} is not a schema key"
        assert value != defaults[key], f"{name}: {key} repeats the default {value!r}"
    for line in text.splitlines():  # each value line carries its one-line reason
        if line.strip() and not line.lstrip().startswith(("#", "- {")) and not line.rstrip().endswith(":"):
            assert "#" in line, f"{name}: no reason given on {line.strip()!r}"


def test_dataclasses_take_their_defaults_from_the_schema():
    from wsss.stages.crf import CRFConfig
    from wsss.stages.train_classifier import ClassifierRecipe

    assert CRFConfig().bi_xy_std == schema.section_defaults("crf")["bi_xy_std"]
    assert ClassifierRecipe().iterations == schema.section_defaults("classifier.train")["iterations"]
    with pytest.raises(TypeError, match="states a default in code"):
        @dataclasses.dataclass
        @schema.schema_defaults("crf")
        class Twice:
            iterations: int = 3


def test_from_section_names_unknown_keys():
    from wsss.stages.crf import CRFConfig

    with pytest.raises(ValueError, match="bi_wx"):
        schema.from_section(CRFConfig, {"bi_wx": 1})
    assert schema.from_section(CRFConfig, {"other_stage_key": 4, "bi_w": 2.0}, ignore=("other_stage_key",)).bi_w == 2.0


def test_load_config_merges_files_onto_the_defaults():
    cfg = load_config(REPO / "config" / "config.yaml")
    assert cfg["dataset"]["source"] == "synthetic" and cfg["crf"]["pos_w"] == 3.0  # changed / default
    assert load_config(REPO / "config" / "voc12.yaml")["classifier"]["tau"] == 0.4


# JSON-schema keywords a property definition may carry. A stray key here is almost always a
# description that YAML split at ", " or ": " (it validates silently and its text is lost).
_KEYWORDS = {"$schema", "$ref", "definitions", "type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
             "default",
             "description", "enum", "items", "minItems", "maxItems", "properties", "additionalProperties",
             "required", "oneOf", "anyOf", "pattern", "const", "minLength", "uniqueItems"}


def _definitions(node, path=""):
    yield path, node
    for key, sub in node.get("properties", {}).items():
        yield from _definitions(sub, f"{path}.{key}" if path else key)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from _definitions(node[key], f"{path}[{key}]")
    for key in ("oneOf", "anyOf"):
        for k, sub in enumerate(node.get(key, [])):
            yield from _definitions(sub, f"{path}[{key}{k}]")


def test_every_schema_definition_holds_only_keywords():
    raw = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    stray = {path: sorted(set(node) - _KEYWORDS) for path, node in _definitions(raw) if set(node) - _KEYWORDS}
    assert not stray, f"schema definitions with non-keyword keys (a split description?): {stray}"
    undescribed = [path for path, node in _definitions(raw) if path and "[" not in path and "description" not in node]
    assert not undescribed, f"keys without a description: {undescribed}"
