"""The config schema as the package's one source of defaults.

workflow/schemas/config.schema.yaml holds every key's type, description and the paper's default.
The workflow validates its config against it; the package reads the same file, so a dataclass
of hyper-parameters takes its defaults from the schema (`schema_defaults`) instead of stating a
second set, and one helper (`from_section`) turns a config section into such a dataclass.
`python -m wsss.config.schema` writes config/README.md from it (tests/test_schema.py checks it is current).
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


# ---------------------------------------------------------------------------- config/README.md
def _type_name(node: dict) -> str:
    if "$ref" in node:  # a shared definition: "#/definitions/job" reads as "job"
        return node["$ref"].rsplit("/", 1)[-1]
    if "oneOf" in node:
        return " or ".join(_type_name(n) for n in node["oneOf"])
    t = node.get("type", "any")
    t = " or ".join(t) if isinstance(t, list) else t
    if "enum" in node:
        t += " (" + " \\| ".join(str(v) for v in node["enum"]) + ")"
    if t == "object" and isinstance(node.get("additionalProperties"), dict):
        t = "mapping of " + _type_name(node["additionalProperties"])
    return t


def _value(v: Any) -> str:
    if v is None:
        return "null"
    text = yaml.safe_dump(v, default_flow_style=True, width=10_000).strip()
    text = text[:-4] if text.endswith("\n...") else text
    return f"`{text}`".replace("|", "\\|")


def _lookup(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None, False
        node = node[part]
    return node, True


def _rows(path: str, node: dict, overrides: dict[str, dict]) -> list[str]:
    rows = []
    for key, sub in node.get("properties", {}).items():
        dotted = f"{path}.{key}" if path else key
        if sub.get("type") == "object" and "properties" in sub:
            rows += _rows(dotted, sub, overrides)
            continue
        cells = [f"`{dotted}`", _type_name(sub), _value(sub.get("default"))]
        for config in overrides.values():
            value, found = _lookup(config, dotted)
            cells.append(_value(value) if found else "")
        desc = " ".join(str(sub.get("description", "")).split()).replace("|", "\\|")
        rows.append("| " + " | ".join(cells + [desc]) + " |")
    return rows


def config_readme(configs: dict[str, Path]) -> str:
    """config/README.md: every key with its type, the paper default, each config file's value."""
    overrides = {name: yaml.safe_load(Path(p).read_text()) or {} for name, p in configs.items()}
    schema = load_schema()
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m wsss.config.schema` from workflow/schemas/config.schema.yaml; do not edit. -->",
        "",
        "Every key, its type, its default (the paper's value: the schema's `default`) and the value each",
        "config file sets where it differs (blank: the default). A config file holds only changes to the",
        "defaults; `config/config.yaml`, the embedded default, applies when no `--configfile` is given.",
        "Why each value differs is the comment beside it in the config file; the measurements behind",
        "them are in docs/experiments.md. Misspelt keys and wrong types stop the run before any job.",
        "",
        "## How to configure",
        "",
        "In this repository, `snakemake` alone runs `config/config.yaml`; another setting is",
        "`--configfile config/voc12.yaml` (PASCAL VOC 2012 + SBD) or `--configfile config/coco14.yaml`",
        "(MS-COCO 2014), and a single key `--config 'classifier={\"tau\": 0.3}'`. Deployed as a module",
        "(snakedeploy; README, \"Use as a module\"), the deployment's `config/` is a copy of this folder and",
        "its `workflow/Snakefile` loads `config/config.yaml`: edit that file, or copy one of the paper's",
        "settings over it (`cp config/voc12.yaml config/config.yaml`). Either way a config file lists only",
        "the keys it changes; `jobs` sizes the jobs (threads, memory, runtime) without rerunning any.",
        "",
    ]
    header = ["key", "type", "default (paper)", *(f"`{n}`" for n in configs), "description"]
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    sections = {k: n for k, n in schema["properties"].items() if n.get("type") == "object" and "properties" in n}
    top = {k: n for k, n in schema["properties"].items() if k not in sections}
    lines += ["## Global keys", "", *table, *_rows("", {"properties": top}, overrides), ""]
    for section, node in sections.items():
        lines += [f"## `{section}`", ""]
        if node.get("description"):
            lines += [" ".join(str(node["description"]).split()), ""]
        lines += [*table, *_rows(section, node, overrides), ""]
    return "\n".join(lines)


README_CONFIGS = {"config/config.yaml": REPO / "config" / "config.yaml",
                  "config/voc12.yaml": REPO / "config" / "voc12.yaml",
                  "config/coco14.yaml": REPO / "config" / "coco14.yaml"}


def main() -> None:
    out = REPO / "config" / "README.md"
    out.write_text(config_readme(README_CONFIGS))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
