"""Model files: {"model": state_dict, "config": run_config}, written atomically, read with clear errors.

Every trained net (PFAN, classifier, DeepLab) is stored this way; the run config is enough to
rebuild the network, so inference never needs the training config.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from wsss.core.hints import rerun_hint
from wsss.core.io import BadInputError, atomic_path


def save_model(path: str | os.PathLike, model: nn.Module, run_config: dict) -> None:
    """Write {"model": state_dict, "config": run_config} atomically (DDP wrapper removed)."""
    model = model.module if hasattr(model, "module") else model
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"model": state, "config": run_config}, tmp)


def load_model(path: str | os.PathLike) -> dict:
    """Read what `save_model` wrote (on CPU); a missing or corrupt file is a BadInputError."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise BadInputError(f"{path}: model file is missing; {rerun_hint(path)}") from None
    except Exception as err:  # torch raises several types for truncated/corrupt pickles
        raise BadInputError(f"{path}: cannot read model file ({err}); {rerun_hint(path)}") from err
    if not isinstance(obj, dict) or "model" not in obj:
        raise BadInputError(f"{path}: not a wsss model file (no 'model' entry); {rerun_hint(path)}")
    return obj


def discard_checkpoint(checkpoint: str | os.PathLike | None, *side_files: str | os.PathLike | None) -> None:
    """Remove the resume checkpoint (and files kept beside it) once the model file is written.

    Call it right after `save_model`. The checkpoint exists to survive a killed job; kept after
    success it would turn `snakemake -f <model>` into a no-op "resume" at the last step that
    returns the old weights. A kill between save_model and this call leaves both: the rerun then
    resumes at the last step and rewrites the same model.
    """
    for path in (checkpoint, *side_files):
        if path is not None:
            Path(path).unlink(missing_ok=True)
