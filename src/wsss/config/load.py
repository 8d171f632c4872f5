"""The run config before any job: command-line value coercion, derived defaults, load-time checks,
and `load_config`, the same merged config outside Snakemake.

`coerce_config` fixes what Snakemake's `--config` parser does to nested values; `check_config`
catches, when the config loads, the mistakes that would otherwise fail a job hours into a run:
a CUDA device that is not there, input files no rule can make, a class list that disagrees with
the prepared data.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import yaml

from wsss.core.errors import BadInputError
from wsss.core.schema import merge, section_defaults, weights_table
from wsss.data import layout

# Snakemake 9 (snakemake/cli.py, parse_config) tries, per `--config KEY=VALUE`, int(), float(),
# "True"/"False", then yaml.load(VALUE, Loader=BaseLoader), then str. BaseLoader resolves no
# scalar type, so in `classifier={"tau":0.3}` every leaf stays a string ("0.3"), and also a
# top-level `flag=true` (lower case) stays "true". The schema says what each key wants; these are
# the string spellings converted to it (YAML 1.1 booleans, as in the config files).
_TRUE, _FALSE = {"true", "yes", "on"}, {"false", "no", "off"}
_NULL = {"null", "~"}
_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*)")


class ConfigError(BadInputError):
    """The run config cannot work; the message names each key and its fix."""


def _types(schema: dict) -> list[str]:
    t = schema.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return _resolve(node, root)


def _from_string(value: str, types: list[str]) -> Any:
    """`value` as the first schema type (in a fixed order) that its spelling matches; else unchanged."""
    low = value.strip().lower()
    if "null" in types and low in _NULL:
        return None  # also for [string, "null"]: in YAML, null is None, never the text "null"
    if "string" in types:
        return value
    if "integer" in types and _INT.fullmatch(value.strip()):
        return int(value.replace("_", ""))
    if "number" in types:
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            return int(value) if _INT.fullmatch(value.strip()) else number
    if "boolean" in types and low in _TRUE | _FALSE:
        return low in _TRUE
    return value


def _valid(value: Any, schema: dict, root: dict) -> bool:
    import jsonschema

    try:
        jsonschema.validate(value, {**schema, **({"definitions": root["definitions"]} if "definitions" in root
                                                 else {})})
    except jsonschema.ValidationError:
        return False
    return True


def _coerce(value: Any, schema: Any, root: dict) -> Any:
    if not isinstance(schema, dict):
        return value
    schema = _resolve(schema, root)
    for sub in schema.get("allOf", []):
        value = _coerce(value, sub, root)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            # The first branch under which the coerced value validates; none: leave it to validate().
            for sub in schema[key]:
                candidate = _coerce(copy.deepcopy(value), sub, root)
                if _valid(candidate, _resolve(sub, root), root):
                    value = candidate
                    break
    types = _types(schema)
    if isinstance(value, str):
        return _from_string(value, types) if types else value
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        patterns = schema.get("patternProperties", {})
        for k in list(value):
            sub = props.get(k)
            if sub is None:
                sub = next((s for p, s in patterns.items() if re.search(p, k)), extra)
            value[k] = _coerce(value[k], sub, root)
        return value
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            return [_coerce(v, items, root) for v in value]
        if isinstance(items, list):  # tuple form
            return [_coerce(v, s, root) for v, s in zip(value, items)] + value[len(items):]
    return value


def coerce_config(config: dict, schema: dict | str | os.PathLike) -> dict:
    """Convert, in place, the strings of `config` that `schema` wants as number/integer/boolean/null.

    Recursive through objects (properties, patternProperties, additionalProperties), arrays
    (items) and oneOf/anyOf/allOf; strings the schema accepts as strings stay strings (except the
    YAML nulls null/~ where null is allowed). Call it before `snakemake.utils.validate`.
    `schema` is the schema dict or the path of its YAML file. Returns `config`.
    """
    if not isinstance(schema, dict):
        import yaml

        schema = yaml.safe_load(Path(schema).read_text())
    props = schema.get("properties", {})
    for key in list(config):
        if key in props:
            config[key] = _coerce(config[key], props[key], schema)
    return config


# ----------------------------------------------------------------------------- load-time checks
def _get(config: dict, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _looks_like_path(value: str) -> bool:
    """classifier.pretrained is a file or a torchvision enum name (IMAGENET1K_V2): tell them apart."""
    return ("/" in value or os.sep in value or value.startswith((".", "~"))
            or Path(value).suffix.lower() in (".pt", ".pth", ".bin", ".tar", ".ckpt"))


def check_device(device: str | None) -> list[str]:
    """Problems with `device` (cuda / cuda:N needs that CUDA device; torch is imported only then)."""
    device = str(device or "auto")
    m = re.fullmatch(r"cuda(?::(\d+))?", device)
    if not m:
        return []
    import torch

    fix = "run with `--config device=cpu` (or device=auto: CUDA when present, else CPU)"
    if not torch.cuda.is_available():
        return [f"device: {device}, but CUDA is not available on this machine (torch.cuda.is_available() is "
                f"False); {fix}"]
    count = torch.cuda.device_count()
    if m.group(1) is not None and int(m.group(1)) >= count:
        return [f"device: {device}, but this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1}); use "
                f"one of those, or {fix}"]
    return []


def weights_paths(config: dict) -> set[str]:
    """The files the weights stage makes (weights.dir / each name of weights.files), normalised."""
    folder = (config.get("weights") or {}).get("dir", "resources/weights")
    return {os.path.normpath(f"{folder}/{name}") for name in weights_table(config)}


def check_input_files(config: dict, workdir: str | os.PathLike | None = None) -> list[str]:
    """Problems with the configured files that must exist because no rule can make them."""
    base = Path(workdir or os.getcwd())
    sal = config.get("saliency") or {}
    precomputed = sal.get("source") == "precomputed"
    keys = [("saliency.precomputed_dir", precomputed, "a folder of <id>.png saliency maps, or set "
             "saliency.source: pfan"),
            ("saliency.checkpoint", not precomputed, "a PFAN model file written by train_saliency, or null to "
             "train PFAN"),
            ("saliency.model.backbone_weights", sal.get("source", "pfan") == "pfan" and not sal.get("checkpoint"),
             "a torchvision VGG-16 ImageNet state dict, e.g. torch.save(torchvision.models.vgg16("
             "weights='IMAGENET1K_V1').state_dict(), PATH) on a machine with internet (null trains PFAN "
             "from scratch, which is useless at VOC scale)"),
            ("classifier.pretrained", True, "a weights file, a torchvision weights name (IMAGENET1K_V2), or null"),
            ("deeplab.init_weights", True, "a torchvision ResNet-101 ImageNet state dict or a converted "
             "COCO-pretrained DeepLab-v2 (README, 'Paper setting'); null trains from scratch, useless at VOC scale")]
    # each classifier.checkpoint entry replaces a training: a missing one would plan nothing on a finished run
    for name, value in ((config.get("classifier") or {}).get("checkpoint") or {}).items():
        keys.append((f"classifier.checkpoint.{name}", value, "a model file written by train_classifier or an "
                     f"official EPS checkpoint_cls.pth, or remove the entry to train {name}"))
    problems = []
    made = weights_paths(config)  # the weights stage downloads these
    for key, used, what in keys:
        value = _get(config, key)
        if not used or value in (None, "") or os.path.normpath(str(value)) in made:
            continue
        value = str(value)
        if key == "classifier.pretrained" and not _looks_like_path(value):
            continue  # a torchvision enum name: torchvision resolves it
        path = Path(value).expanduser()
        path = path if path.is_absolute() else base / path
        kind_ok = path.is_dir() if key == "saliency.precomputed_dir" else path.is_file()
        if not kind_ok:
            state = "is not a folder" if path.exists() else "does not exist"
            problems.append(f"{key}: {value} {state} (resolved to {path}; no rule can make it); set {key} to "
                            f"{what}")
    return problems


def check_classes(config: dict, workdir: str | os.PathLike | None = None) -> list[str]:
    """A prepared dataset made with another class list than dataset.classes (labels would be misread)."""
    ds = config.get("dataset") or {}
    if not ds.get("root") or ds.get("classes") is None:
        return []
    path = Path(layout.prepared(ds["root"], "classes"))
    path = path if path.is_absolute() else Path(workdir or os.getcwd()) / path
    if not path.is_file():
        return []
    prepared = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    wanted = [str(c) for c in ds["classes"]]
    if prepared == wanted:
        return []
    return [f"dataset.classes {wanted} differs from the classes the prepared data was made with, {prepared} "
            f"({path}); fix dataset.classes, or rebuild the data with `snakemake --forcerun prepare_dataset`"]


def complete_config(config: dict) -> dict:
    """Fill, in place, the defaults that depend on other keys: dataset.classes null takes the data
    source's own classes. Returns `config`."""
    from wsss.data.sources import source

    dataset = config.setdefault("dataset", {})
    if dataset.get("classes") is None and dataset.get("source") in _registered_sources():
        dataset["classes"] = list(source(dataset["source"]).classes)
    return config


def _registered_sources() -> list[str]:
    from wsss.data.sources import SOURCES

    return list(SOURCES)


def check_names(config: dict) -> list[str]:
    """The data source, methods and classifiers the config names are registered (the schema checks
    only their spelling)."""
    from wsss import methods

    problems = []
    if config["dataset"]["source"] not in _registered_sources():
        problems.append(f"dataset.source: {config['dataset']['source']!r} is not a registered data source "
                        f"({', '.join(_registered_sources())}; docs/architecture.md, 'Add a dataset')")
    known = methods.pseudo_mask_methods()
    names = [f"methods: {m!r}" for m in config["methods"] if m not in known]
    names += [f"deeplab.methods: {m!r}" for m in config["deeplab"]["methods"] if m not in methods.METHODS]
    for key in ("scales", "flip"):
        value = config["classifier"]["infer"][key]
        if isinstance(value, dict):
            names += [f"classifier.infer.{key}: {c!r}" for c in value if c not in methods.CLASSIFIERS]
    if isinstance(config["crf"]["unary"], dict):
        names += [f"crf.unary: {m!r}" for m in config["crf"]["unary"] if m not in known]
    if names:
        problems.append("unknown method or classifier: " + "; ".join(names) + f". Registered methods: "
                        f"{', '.join(methods.METHODS)}; classifiers: {', '.join(methods.CLASSIFIERS)} "
                        "(wsss.methods; docs/architecture.md, 'Add a method')")
    return problems


def check_settings(config: dict) -> list[str]:
    """Combinations of keys that cannot work."""
    problems = []
    saliency = config["saliency"]
    if saliency["source"] == "precomputed" and not saliency["precomputed_dir"]:
        problems.append("saliency.source is precomputed but saliency.precomputed_dir is not set: point it at a "
                        "folder of <id>.png maps, or set saliency.source: pfan")
    from wsss.config.settings import released_archive
    from wsss.methods import method

    named = [m for m in [*config["methods"], *config["deeplab"]["methods"]] if method(m).released]
    if named and released_archive(config) is None:
        problems.append(f"methods name {named[0]!r} (the authors' released pseudo-masks), but data source "
                        f"{config['dataset']['source']!r} has no release: set pseudo_masks.released_archive to an "
                        "archive of <id>.png masks, or drop it from methods")
    if config["evaluation"]["pseudo_mask_split"] == "val":
        problems.append("evaluation.pseudo_mask_split is val, but pseudo-masks are made for train_aug ids only (as "
                        "in the paper): set it to train or train_aug")
    return problems


def check_gpu_requests(cap: int | None, requests: dict[str, int]) -> list[str]:
    """A rule's gpu=N is clamped, silently, to a global `--resources gpu=M` cap when N > M. The cap
    usually comes from profiles/default, which Snakemake loads from the working directory even next
    to `--profile profiles/slurm`: a set-resources gpu=N>1 (multi-GPU DDP training) would then run
    on one GPU. `requests`: rule -> gpu of its set-resources."""
    if cap is None:
        return []
    return [f"set-resources asks gpu={asked} for rule {rule}, but the global resource cap is gpu={cap} "
            f"(--resources, or profiles/default loaded as the workflow profile), so the job would silently get "
            f"{cap} GPU(s). On SLURM add `--workflow-profile none`; on one machine pass `--resources gpu={asked}`"
            for rule, asked in requests.items() if asked > cap]


def check_config(config: dict, workdir: str | os.PathLike | None = None, raise_error: bool = True,
                 gpu_cap: int | None = None, gpu_requests: dict[str, int] | None = None) -> list[str]:
    """Every load-time problem of `config`; with `raise_error`, one ConfigError listing them all.

    `workdir` resolves relative paths (default: the current directory, which is the Snakemake
    working directory when the Snakefile runs). `gpu_cap` / `gpu_requests`: the global gpu resource
    and the set-resources gpu requests of the Snakemake invocation.
    """
    problems = check_names(config)
    if not problems:  # the checks below look names up
        problems = (check_settings(config) + check_device(config.get("device")) + check_input_files(config, workdir)
                    + check_classes(config, workdir) + check_gpu_requests(gpu_cap, gpu_requests or {}))
    if problems and raise_error:
        raise ConfigError(f"the config has {len(problems)} problem(s), found before any job ran:\n  - "
                          + "\n  - ".join(problems))
    return problems


def check_job_names(config: dict, rules: list[str]) -> None:
    """Every `jobs` key names a rule of the workflow, a family of rules (`download` sizes download_*),
    or `default`; a misspelt one would otherwise size nothing, silently. The schema's own entries
    may size rules of another data source's rule file, which this workflow did not include."""
    known = set(rules) | {r.split("_", 1)[0] for r in rules} | set(section_defaults("jobs")) | {"default"}
    unknown = sorted(set(config.get("jobs") or {}) - known)
    if unknown:
        raise ConfigError(f"jobs: {', '.join(unknown)} name(s) no rule of this workflow, so they would size "
                          f"nothing; use a rule name (`snakemake --list-rules` lists them) or a family such as "
                          f"`download`, or remove the entry")


def load_config(*paths: str | Path) -> dict:
    """A config as the workflow sees it: the schema's defaults changed by each file in turn."""
    config = section_defaults("")
    for path in paths:
        config = merge(config, yaml.safe_load(Path(path).read_text()) or {})
    return complete_config(config)


def gpu_requests(workflow) -> dict:
    """check_config's `gpu_cap` and `gpu_requests` of a Snakemake workflow object: the global gpu
    resource and each rule's set-resources gpu."""
    def value(res):
        return getattr(res, "value", res)

    requests = {rule: value(res.get("gpu")) for rule, res in workflow.resource_settings.overwrite_resources.items()
                if "gpu" in res and isinstance(value(res.get("gpu")), int)}
    return {"gpu_cap": value(workflow.global_resources.get("gpu")), "gpu_requests": requests}
