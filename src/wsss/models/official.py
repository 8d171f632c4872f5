"""Checkpoints of the official EPS code (halbielee/EPS) as project model files, and back.

The official classifiers, `network.resnet38_eps.Net(C+1)` and `network.resnet38_cls.Net(C)`, are
ResNet-38d plus `fc8`, a 1×1 conv 4096 → maps without bias (xavier-uniform initialised). Their
training saves `model.module.state_dict()` (module/train.py), so a checkpoint holds exactly the
resnet38d keys (`conv1a.weight` … `bn7.*`) and `fc8.weight` (M, 4096, 1, 1). Ours is a
`LocalizationClassifier` with `backbone.<the same keys>` and `head.weight`: the mapping is a
renaming. The eps net's background map is its last, as ours; M = C+1 means eps, M = C the CAM
baseline (`resnet38_cls`, whose `dropout7` holds no parameters).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

import torch

from wsss.core.io import BadInputError, atomic_path

log = logging.getLogger(__name__)

OFFICIAL_HEAD = "fc8.weight"
PROJECT_HEAD = "head.weight"
BACKBONE_PREFIX = "backbone."


def classifier_of_head(num_maps: int, num_classes: int) -> str:
    """eps for C+1 maps (background last), cam for C; ValueError otherwise."""
    if num_maps == num_classes + 1:
        return "eps"
    if num_maps == num_classes:
        return "cam"
    raise ValueError(f"fc8 has {num_maps} output maps, which fits neither eps ({num_classes + 1}) nor cam "
                     f"({num_classes}) with {num_classes} classes")


def official_to_project(state: dict, num_classes: int) -> tuple[dict, str]:
    """An official resnet38_eps/cls state dict → (LocalizationClassifier state dict, classifier name).

    A DataParallel `module.` prefix is removed; missing BN `num_batches_tracked` buffers (older
    torch) are added as 0.
    """
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    if OFFICIAL_HEAD not in state:
        raise ValueError(f"no '{OFFICIAL_HEAD}' (the official classifier head)")
    head = state[OFFICIAL_HEAD]
    if head.dim() != 4 or tuple(head.shape[1:]) != (4096, 1, 1):
        raise ValueError(f"'{OFFICIAL_HEAD}' has shape {tuple(head.shape)}, expected (maps, 4096, 1, 1)")
    name = classifier_of_head(head.shape[0], num_classes)
    out = {PROJECT_HEAD: head}
    for key, value in state.items():
        if key != OFFICIAL_HEAD:
            out[BACKBONE_PREFIX + key] = value
    for key in [k for k in out if k.endswith(".running_mean")]:
        out.setdefault(key[: -len("running_mean")] + "num_batches_tracked", torch.tensor(0, dtype=torch.long))
    return out, name


def project_to_official(state: dict) -> dict:
    """A resnet38d LocalizationClassifier state dict → the official key layout (fc8.weight)."""
    out = {}
    for key, value in state.items():
        if key == PROJECT_HEAD:
            out[OFFICIAL_HEAD] = value
        elif key.startswith(BACKBONE_PREFIX):
            out[key[len(BACKBONE_PREFIX):]] = value
        else:
            raise ValueError(f"'{key}' is neither backbone.* nor head.weight; not a LocalizationClassifier state")
    return out


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def import_official_checkpoint(path: str | os.PathLike, num_classes: int, class_names: list[str],
                               out_model_path: str | os.PathLike) -> dict:
    """Write a project model file (as `save_model` does) for an official EPS/cls checkpoint.

    `path` is an official state dict (checkpoint_cls.pth of the EPS code or its released
    checkpoints) or a project model file, which is validated and copied as it is. The written file
    loads with `wsss.models.classifier.load_classifier`, so inference runs unchanged. Returns the
    run config stored in it.
    """
    from wsss.core.model_files import save_model
    from wsss.methods.registry import classifier
    from wsss.models.classifier import build_classifier, load_classifier

    path = Path(path)
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise BadInputError(f"{path}: checkpoint is missing; download the official EPS checkpoint "
                            "(see docs/official_eps_facts.md) or fix the path") from None
    except Exception as err:
        raise BadInputError(f"{path}: cannot read the checkpoint ({err}); re-download it") from err

    if isinstance(obj, dict) and "model" in obj and "config" in obj:  # already a project model file
        _, cfg = load_classifier(path)  # raises BadInputError if it does not rebuild
        if list(cfg.get("class_names", [])) != list(class_names):
            raise BadInputError(f"{path}: a project model file for classes {cfg.get('class_names')}, not "
                                f"{list(class_names)}; fix dataset.classes or give the matching model")
        with atomic_path(out_model_path) as tmp:
            shutil.copyfile(path, tmp)
        return cfg

    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not (isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values())):
        raise BadInputError(f"{path}: neither an official EPS/cls checkpoint (a state dict with fc8.weight) "
                            "nor a wsss model file; give checkpoint_cls.pth of the official code")
    try:
        state, name = official_to_project(obj, num_classes)
    except ValueError as err:
        raise BadInputError(f"{path}: not an official EPS/cls checkpoint for {num_classes} classes ({err}); "
                            "give the checkpoint trained on this dataset") from None
    model = build_classifier(classifier(name), num_classes, "resnet38d")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise BadInputError(f"{path}: does not fit the official ResNet-38d classifier ({str(err)[:300]}); give "
                            "checkpoint_cls.pth of network.resnet38_eps or network.resnet38_cls") from err
    run_config = {"classifier": name, "class_names": list(class_names),
                  "model": {"backbone": "resnet38d", "width": 32, "pretrained": None},
                  "own": {}, "train": None, "seed": None,
                  "imported_from": {"path": str(path), "sha1": _sha1(path),
                                    "network": "resnet38_eps" if name == "eps" else "resnet38_cls"}}
    save_model(out_model_path, model, run_config)
    log.info("imported official %s checkpoint %s → %s", name, path, out_model_path)
    return run_config


def import_classifier(path: str | os.PathLike, name: str, class_names: list[str],
                      out_model_path: str | os.PathLike) -> dict:
    """Stage entry (rule import_classifier): `path` as the model file of classifier `name`.

    A checkpoint of the other classifier (e.g. a resnet38_cls file given for eps) is an error, so
    the table rows never mix up the baseline and EPS.
    """
    run_config = import_official_checkpoint(path, len(class_names), class_names, out_model_path)
    found = run_config.get("classifier", run_config.get("method"))
    if found != name:
        Path(out_model_path).unlink(missing_ok=True)
        raise BadInputError(f"{path}: a {found} classifier, given as classifier.checkpoint.{name}; "
                            f"give it under classifier.checkpoint.{found}")
    return run_config
