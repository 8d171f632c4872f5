"""The config schema as the package's one source of defaults (the ground floor: every package reads it).

workflow/schemas/config.schema.yaml holds every key's type, description and the paper's default.
The workflow validates its config against it; the package reads the same file, so a dataclass
of hyper-parameters takes its defaults from the schema (`schema_defaults`) instead of stating a
second set, and one helper (`from_section`) turns a config section into such a dataclass.
`wsss.config.schema` writes config/README.md from it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"


@functools.lru_cache(maxsize=1)
def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def section_schema(path: str) -> dict:
    """The schema node of a dotted config path ("" = the root, "classifier.train", ...)."""
    node = load_schema()
    for part in filter(None, path.split(".")):
        try:
            node = node["properties"][part]
        except KeyError:
            raise KeyError(f"the config schema has no key {path!r}") from None
    return node


def section_defaults(path: str) -> dict[str, Any]:
    """{key: default} of a section's direct keys (nested sections as their own defaults, resolved)."""
    out = {}
    for key, node in section_schema(path).get("properties", {}).items():
        if node.get("type") == "object" and "properties" in node:
            out[key] = section_defaults(f"{path}.{key}" if path else key)
        elif "default" in node:
            out[key] = copy.deepcopy(node["default"])
    return out


def schema_defaults(path: str, exclude: tuple[str, ...] = (), **renamed: str):
    """Class decorator (write it below @dataclass): each field's default is the schema's value at
    `path.<field>` (or `path.<renamed[field]>`). A field that also states a default in code is an
    error: there is one set of defaults. Fields the schema does not know, and `exclude`d ones
    (a field holding a resolved form of its key), keep their code default.
    """

    def wrap(cls):
        defaults = section_defaults(path)
        own = dict(cls.__dict__.get("__annotations__", {}))
        inherited = {}
        for base in reversed(cls.__mro__[1:]):
            if dataclasses.is_dataclass(base):
                inherited.update({f.name: f.type for f in dataclasses.fields(base)})
        annotations = {**{k: v for k, v in inherited.items() if k not in own}, **own}
        for name in annotations:
            key = renamed.get(name, name)
            if key not in defaults or name in exclude:
                continue
            if name in cls.__dict__:
                raise TypeError(f"{cls.__name__}.{name} states a default in code; its default is the "
                                f"schema's {path}.{key}")
            value = defaults[key]
            if isinstance(value, (list, dict)):
                setattr(cls, name, dataclasses.field(default_factory=functools.partial(copy.deepcopy, value)))
            else:
                setattr(cls, name, value)
        cls.__annotations__ = annotations
        return cls

    return wrap


def merge(base: dict, changes: dict) -> dict:
    """`base` updated by `changes`, nested mappings merged key by key (Snakemake's config merge)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and value:
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def weights_table(config: dict) -> dict[str, dict]:
    """weights.files: the schema's table with the config's entries added or replaced (a config that
    names one file of its own keeps the others)."""
    table = copy.deepcopy(section_schema("weights.files").get("default", {}))
    table.update(copy.deepcopy((config.get("weights") or {}).get("files") or {}))
    return table


def from_section(cls, section: dict | None, ignore=(), **override):
    """A dataclass from a config section: unknown keys are an error, keys in `ignore` are skipped
    (keys other code of the same section reads), missing ones take the dataclass defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in {**(section or {}), **override}.items() if k not in set(ignore)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} key(s) {sorted(unknown)}; known: {sorted(names)}")
    return cls(**values)
