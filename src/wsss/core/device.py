"""Device selection, said out loud.

- `auto` picks CUDA when a device is usable, else the CPU, and logs which and why; when a CUDA
  build of torch sees a GPU driver but cannot use it, it warns instead of silently running on the CPU.
- `cuda` / `cuda:N` without a usable device fails (the config check, wsss.config.load, already stops
  such a run before any job).
- One GPU per job on a workstation: Snakemake's `gpu` resource only counts; it does not say which
  GPU a job may use, so four gpu=1 jobs would all land on cuda:0. `claim_gpus(n)` takes n devices
  no other job of this machine holds (an exclusive lock file per device) and sets
  CUDA_VISIBLE_DEVICES before CUDA starts. Under SLURM (or whenever CUDA_VISIBLE_DEVICES is already
  set) the scheduler's choice is kept.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_HELD: list = []  # lock files held for the life of the job process


def place_model(model, device, channels_last: bool = True):
    """`model` moved to `device`, its 4-D weights in channels_last (NHWC) memory format.

    On CUDA that is the tensor-core layout; on the CPU oneDNN's NHWC convolutions ran the embedded
    default's small nets 15-30 % faster in training and 25-40 % in inference than NCHW
    (docs/experiments.md). Convolutions follow the weights' format, so inputs need no conversion.
    """
    import torch

    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def resolve_device(name: str = "auto"):
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            dev = torch.device("cuda")
            log.info("device auto: CUDA (%s, %d visible device(s))", torch.cuda.get_device_name(0),
                     torch.cuda.device_count())
            return dev
        if torch.version.cuda is not None and shutil.which("nvidia-smi"):
            log.warning("device auto: this torch is built for CUDA %s and nvidia-smi is present, but CUDA is "
                        "unusable (driver mismatch or no visible device: CUDA_VISIBLE_DEVICES=%r); running on the "
                        "CPU. Set device: cpu to silence this, or fix the driver.", torch.version.cuda,
                        os.environ.get("CUDA_VISIBLE_DEVICES"))
        else:
            log.info("device auto: CPU (no CUDA device)")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device '{name}' requested but CUDA is not available; set device: auto or cpu")
    return torch.device(name)


def _device_count() -> int:
    """GPUs on this machine (WSSS_FAKE_GPU_COUNT fakes it for tests), without starting CUDA."""
    fake = os.environ.get("WSSS_FAKE_GPU_COUNT")
    if fake is not None:
        return int(fake)
    # nvidia-smi, not torch: torch would count (and cache) devices before CUDA_VISIBLE_DEVICES is set.
    import subprocess

    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in out.splitlines())


def claim_gpus(n: int, lock_dir: str | os.PathLike | None = None) -> list[int]:
    """Take `n` GPUs that no other job on this machine holds and make them this process's only
    visible devices; returns their indices ([] when nothing is claimed).

    Nothing is claimed for n < 1, without GPUs, or when CUDA_VISIBLE_DEVICES is already set (SLURM
    and other schedulers set it: their choice is kept). Locks are released when the process ends,
    so a killed job frees its GPU.
    """
    import fcntl

    if n < 1 or "CUDA_VISIBLE_DEVICES" in os.environ:
        return []
    count = _device_count()
    if count == 0:
        return []
    folder = Path(lock_dir or os.environ.get("WSSS_GPU_LOCK_DIR") or Path(tempfile.gettempdir()) / "wsss-gpu-locks")
    folder.mkdir(parents=True, exist_ok=True)
    claimed = []
    for index in range(count):
        handle = open(folder / f"gpu{index}.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _HELD.append(handle)
        claimed.append(index)
        if len(claimed) == n:
            break
    if len(claimed) < n:
        log.warning("asked for %d GPU(s), %d free of %d: using %s", n, len(claimed), count, claimed)
    if claimed:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, claimed))
        log.info("claimed GPU(s) %s (CUDA_VISIBLE_DEVICES=%s)", claimed, os.environ["CUDA_VISIBLE_DEVICES"])
    return claimed
