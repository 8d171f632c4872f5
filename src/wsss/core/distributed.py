"""Multi-GPU training jobs: a rule with gpu=N>1 runs its script under torchrun with N processes.

The training scripts are Snakemake `script:` jobs, so no launcher prefix can go in front of
them. Instead the script calls `relaunched_under_torchrun(snakemake.resources.get("gpu", 0))`
first: with N>1 visible CUDA devices it re-executes the very same script file (Snakemake's
temporary copy, which carries the job's inputs and params) under
`python -m torch.distributed.run --standalone --nproc_per_node N`, waits, and returns True; the
N children see the torchrun environment, skip the relaunch and train with DDP in
`wsss.core.train_loop` (which splits the config's global batch over the ranks, so the recipe does
not change with N). gpu=1 and CPU-only runs never start torchrun.

    with log_to(snakemake.log[0]):
        if not relaunched_under_torchrun(snakemake.resources.get("gpu", 0)):
            train_classifier(...)
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

log = logging.getLogger(__name__)

# torchrun (torch.distributed.run) sets these in every process it starts.
_TORCHRUN_VARS = ("TORCHELASTIC_RUN_ID", "LOCAL_RANK")


def under_torchrun() -> bool:
    """True in a process that torchrun started (so it must not relaunch itself)."""
    return any(v in os.environ for v in _TORCHRUN_VARS)


def plan_processes(gpus: int, cuda_devices: int) -> int:
    """How many training processes a job with `gpus` GPUs granted runs, given the visible devices.

    One process unless both the rule asked for more than one GPU and CUDA shows more than one
    device: on a CPU-only machine the gpu resource is only a scheduling token, and DDP over CPU
    processes would just split the same cores.
    """
    gpus = int(gpus or 0)
    if gpus <= 1 or cuda_devices <= 1:
        return 1
    if cuda_devices < gpus:
        log.warning("the rule asks for %d GPUs but only %d are visible; training on %d", gpus,
                    cuda_devices, cuda_devices)
    return min(gpus, cuda_devices)


def torchrun_command(nproc: int, script: str, args: list[str] | None = None) -> list[str]:
    """The torchrun command line for `script`: one node, a free rendezvous port (--standalone),
    so several jobs on one node do not collide."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            script, *(args or [])]


def launch(nproc: int, script: str, args: list[str] | None = None, env: dict | None = None) -> int:
    """Run `script` under torchrun with `nproc` processes; return torchrun's exit status.

    The children write to this process's current stdout/stderr, which inside `log_to` is the
    rule's log file (so every rank's messages land in the job log).
    """
    cmd = torchrun_command(nproc, script, args)
    log.info("launching %d DDP processes: %s", nproc, " ".join(cmd))
    child_env = dict(os.environ if env is None else env)
    # Each rank would otherwise start one thread per core and the ranks would fight over them.
    # The affinity mask is what the job was granted (SLURM's cpuset), not the node's core count.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    child_env.setdefault("OMP_NUM_THREADS", str(max(1, cores // nproc)))
    sys.stdout.flush()
    sys.stderr.flush()
    out = sys.stdout if _has_fileno(sys.stdout) else None
    err = sys.stderr if _has_fileno(sys.stderr) else None
    return subprocess.run(cmd, env=child_env, stdout=out, stderr=err, check=False).returncode


def _has_fileno(stream) -> bool:
    try:
        stream.fileno()
        return True
    except (AttributeError, OSError, ValueError):
        return False


def relaunch(nproc: int) -> bool:
    """Re-execute the running script under torchrun with `nproc` processes, unless this process
    already is a torchrun child or nproc is 1. True when the relaunched run finished; a failed
    run raises (so Snakemake marks the job failed and keeps no outputs)."""
    if nproc <= 1 or under_torchrun():
        return False
    rc = launch(nproc, sys.argv[0], sys.argv[1:])
    if rc != 0:
        raise RuntimeError(f"torchrun with {nproc} processes exited with status {rc}; "
                           "each rank's error is in this log above")
    return True


def relaunched_under_torchrun(gpus: int) -> bool:
    """Entry point for training scripts: relaunch under torchrun when gpu=N>1 GPUs are visible.

    Returns True after the multi-process run finished (the caller then does nothing more);
    False when the caller should train in this process (gpu<=1, CPU only, or already a rank).
    """
    if under_torchrun():
        return False
    import torch

    cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    nproc = plan_processes(gpus, cuda_devices)
    if int(gpus or 0) > 1 and nproc == 1:
        log.info("gpu=%s but %d CUDA device(s) visible: training in one process", gpus, cuda_devices)
    return relaunch(nproc)


# ---- process-group helpers of the training loop (torch imported when called) ----------------
def dist_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the torchrun environment; (0, 1, 0) without it."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def is_distributed() -> bool:
    """True when launched by torchrun (or equivalent) with more than one process."""
    return dist_env()[1] > 1


def is_main_process() -> bool:
    return dist_env()[0] == 0


def init_distributed(device):
    """Join the process group named by the environment; returns (this rank's device, created).

    `created` is True when this call initialised the group (the loop then also destroys it).
    """
    import torch
    import torch.distributed as dist

    if not is_distributed():
        return device, False
    _, _, local_rank = dist_env()
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if dist.is_initialized():
        return device, False
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device, True


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
