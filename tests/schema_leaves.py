"""Every leaf of a resolved config (a number, a string, a boolean, a list, an empty or None value), and a
changed value for each that the schema accepts: what tests/test_reruns.py perturbs one at a time."""

from __future__ import annotations

import copy
from collections.abc import Iterator

from wsss.core.schema import load_schema

# Leaves whose changed value cannot be derived from their type (None, empty, a path that must exist).
CHANGED = {
    "saliency.precomputed_dir": "elsewhere/saliency",
    "saliency.checkpoint": "elsewhere/pfan.pth",
    "saliency.duts_md5": "0" * 32,
    "saliency.model.backbone_weights": "elsewhere/vgg16.pth",
    "saliency.train.crop_size": 24,
    "classifier.pretrained": "elsewhere/backbone.pth",
    "classifier.checkpoint": {"eps": "elsewhere/eps.pth"},
    "classifier.frozen_blocks": ["conv1"],
    "classifier.train.decay_iterations": 8,
    "crf.unary": "labels",
    "pseudo_masks.released_archive": "elsewhere/release.zip",
    "deeplab.init_weights": "elsewhere/init.pth",
    "evaluation.figure_ids_train": ["synth_train_00001"],
    "evaluation.figure_ids_val": ["synth_val_00001"],
    "ablation.in_all": ["tau"],
    "dataset.synthetic.context": {"train": "railroad", "boat": "railroad"},
    "dataset.synthetic.saliency_missed_class": "box",
    "device": "auto",
    "dataset.source": "voc",
    "saliency.source": "released",
    "ablation.tau": [0.2, 0.3],
    "weights.files": None,  # a table of the weights' urls: each entry below is a leaf of its own
}


def _resolved(node: dict) -> dict:
    """A schema node with its `$ref` (#/definitions/...) followed."""
    while isinstance(node, dict) and "$ref" in node:
        target = load_schema()
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _node(schema: dict, key: str) -> dict:
    schema = _resolved(schema)
    if key in schema.get("properties", {}):
        return _resolved(schema["properties"][key])
    extra = schema.get("additionalProperties")
    return _resolved(extra) if isinstance(extra, dict) else {}


def leaves(config: dict, schema: dict | None = None, path: tuple = ()) -> Iterator[tuple[tuple, object, dict]]:
    """(path as keys, value, schema node) of every leaf; a non-empty mapping is walked into."""
    schema = load_schema() if schema is None else schema
    for key, value in config.items():
        keys, node = (*path, key), _node(schema, key)
        if isinstance(value, dict) and value and CHANGED.get(".".join(keys), ...) in (None, ...):
            yield from leaves(value, node, keys)
        else:
            yield keys, value, node


def _number(value, node: dict):
    low, high = node.get("minimum"), node.get("maximum")
    if isinstance(value, bool):
        return not value
    if isinstance(value, int) and node.get("type") == "integer":
        up = value + 1
        return up if high is None or up <= high else value - 1
    value = float(value)
    for candidate in (value * 0.5 if value else 0.1, value + 0.1, value - 0.05):
        if (low is None or candidate >= low) and (high is None or candidate <= high) and candidate != value:
            return round(candidate, 6)
    raise ValueError(f"no changed value for {value} within [{low}, {high}]")


def changed(keys: tuple, value, node: dict):
    """Another value the schema accepts for the leaf at `keys`."""
    path = ".".join(keys)
    if path in CHANGED:
        return copy.deepcopy(CHANGED[path])
    if node.get("enum"):
        return next(c for c in node["enum"] if c != value)
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return _number(value, node)
    if isinstance(value, str):
        if path.endswith("md5") or path.endswith("sha256"):
            return "f" * len(value)
        return value + ("?mirror=2" if "://" in value else "_moved")
    if isinstance(value, list) and value:
        items = node.get("items", {})
        last = value[-1]
        if isinstance(last, list):
            return value[:-1] if len(value) > 1 else value + value
        if isinstance(last, (int, float)) and not isinstance(last, bool):
            return value[:-1] + [_number(last, items if isinstance(items, dict) else {})]
        return value[:-1] if len(value) > 1 else value + value
    raise ValueError(f"{path}: no changed value for {value!r} (add it to CHANGED)")


def with_changed(config: dict, keys: tuple, value) -> dict:
    """A copy of the resolved `config` with the leaf at `keys` set to `value`: a whole config, so that a
    mapping the schema fills in (weights.files) keeps its other keys."""
    out = copy.deepcopy(config)
    node = out
    *parents, last = keys
    for part in parents:
        node = node[part]
    node[last] = value
    return out
