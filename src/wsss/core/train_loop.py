"""The one training loop every trainer uses (classifier, PFAN, DeepLab).

What it guarantees:
- Data order is a pure function of (seed, step): an infinite sampler draws epoch permutations
  from (seed, epoch) and every sample gets its own augmentation seed from (seed, step, slot), so
  the dataset is indexed with `(index, sample_seed)` keys and never touches a global RNG.
- Resumable: a checkpoint file (model, optimizer, scheduler, AMP scaler, step, RNG states, the
  resolved run config) is written atomically every `checkpoint_every` steps and at the end, and
  read back if it exists. On CPU a resumed run ends bit-identical to an uninterrupted one.
- AMP (autocast + GradScaler) on CUDA only, channels_last on every device; DDP when launched by torchrun
  (WORLD_SIZE > 1): gloo on CPU, nccl on CUDA, each rank takes its slice of the global batch,
  rank 0 writes every file.
- A CSV of losses (step, lr, every key `step()` returns) and tqdm progress on stderr.
- It logs how many optimisation steps this call ran (iterations minus the resumed step): what
  tells a resumed run from one that silently started over, since both end with the same weights.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler

from wsss.core.device import place_model, resolve_device
from wsss.core.distributed import barrier, dist_env, init_distributed, is_distributed
from wsss.core.io import BadInputError, atomic_path

log = logging.getLogger(__name__)

StepFn = Callable[[nn.Module, dict], dict]


@dataclass
class LoopConfig:
    iterations: int
    batch_size: int               # global batch: split across DDP ranks
    num_workers: int = 0
    checkpoint_every: int = 0     # also always at the end; 0 = end only
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    amp: bool = True              # autocast + GradScaler, CUDA only
    channels_last: bool = True    # NHWC weights and inputs (wsss.core.device.place_model)

    @classmethod
    def from_recipe(cls, recipe: "TrainingRecipe", seed: int, device: str) -> "LoopConfig":
        """The loop's settings from a trainer's recipe (its `channels_last`, where it has one)."""
        return cls(iterations=recipe.iterations, batch_size=recipe.batch_size, num_workers=recipe.num_workers,
                   checkpoint_every=recipe.checkpoint_every, log_every=recipe.log_every, seed=seed, device=device,
                   amp=recipe.amp, channels_last=getattr(recipe, "channels_last", True))


@dataclass
class TrainingRecipe:
    """What every trainer's recipe has (classifier, PFAN, DeepLab extend it). No defaults here:
    each subclass takes them from its config section in the schema (wsss.core.schema.schema_defaults)."""

    iterations: int
    batch_size: int               # global batch (split over DDP ranks)
    lr: float                     # base learning rate, poly-decayed
    momentum: float
    weight_decay: float
    poly_power: float             # lr = base * (1 - step / iterations) ** power
    num_workers: int              # DataLoader workers
    checkpoint_every: int         # resumable checkpoint interval (0 = end only)
    log_every: int
    amp: bool                     # mixed precision (CUDA only)


# ----------------------------------------------------------------------------- sampling
def sample_seed(seed: int, step: int, slot: int) -> int:
    """Augmentation seed of the sample in `slot` of the global batch at `step` (a pure function)."""
    return int(np.random.SeedSequence([seed, step, slot]).generate_state(1, dtype=np.uint32)[0])


class StepBatchSampler(Sampler):
    """Yields, for steps start..iterations-1, this rank's list of `(index, sample_seed)` keys.

    The global batch at step s covers positions s*B .. s*B+B-1 of an endless stream made of
    epoch permutations of range(N), each drawn from (seed, epoch). Rank r takes slots
    [r*B/W, (r+1)*B/W), so W ranks together see exactly the single-process batch.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, start: int, iterations: int,
                 rank: int = 0, world_size: int = 1):
        if num_items <= 0:
            raise BadInputError("training set is empty: check the id list given to the training rule")
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} is not divisible by the {world_size} DDP processes")
        self.n, self.b, self.seed = num_items, batch_size, seed
        self.start, self.iterations = start, iterations
        per_rank = batch_size // world_size
        self.slots = range(rank * per_rank, (rank + 1) * per_rank)
        self._epoch, self._perm = -1, None

    def _index(self, position: int) -> int:
        epoch = position // self.n
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return int(self._perm[position % self.n])

    def keys(self, step: int) -> list[tuple[int, int]]:
        return [(self._index(step * self.b + slot), sample_seed(self.seed, step, slot)) for slot in self.slots]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.iterations):
            yield self.keys(step)

    def __len__(self) -> int:
        return max(0, self.iterations - self.start)


def poly_scheduler(optimizer: torch.optim.Optimizer, iterations: int, power: float = 0.9,
                   horizon: int | None = None):
    """lr = base_lr * (1 - step/iterations)^power, stepped once per iteration.

    `horizon` decays over that many steps instead, whatever the run's length, and then holds the
    last decayed value, base_lr * (1/horizon)^power, as the official PolyOptimizer does once its
    max_step is reached (halbielee/EPS util/torchutils.py): the authors' COCO logs decay over
    76,950 steps of a 256,500-step run. None: the run's `iterations`, to zero at its end.
    """
    if horizon is None:
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: max(0.0, 1.0 - s / max(1, iterations)) ** power)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (1.0 - min(s, horizon - 1) / horizon) ** power)


# ----------------------------------------------------------------------------- checkpoints
def files_fingerprint(paths) -> str:
    """SHA-1 over the names and contents of the training data files.

    Trainers put it in the run config: Snakemake reruns a training job when its inputs change,
    and the checkpoint of the old inputs must then not be resumed (the loop starts over when
    the run config differs). A missing file is a BadInputError naming it.
    """
    import hashlib

    digest = hashlib.sha1()
    for path in paths:
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BadInputError(f"{path}: training file is missing; re-run the rule that writes it") from None
        digest.update(path.name.encode() + b"\0" + hashlib.sha1(data).digest())
    return digest.hexdigest()


def _canonical(run_config: dict) -> str:
    return json.dumps(run_config, sort_keys=True, default=str)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_checkpoint(path, step, model, optimizer, scheduler, scaler, run_config, loss_rows) -> None:
    with atomic_path(path) as tmp:
        torch.save({"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "scaler": scaler.state_dict(), "rng": _rng_state(), "run_config": run_config,
                    "loss_rows": loss_rows}, tmp)


def _load_checkpoint(path, model, optimizer, scheduler, scaler, run_config) -> tuple[int, list]:
    """Restore a checkpoint if it exists and was made with the same config.

    Returns (its step, the loss-CSV rows up to it) or (0, []) when training starts over.
    """
    if path is None or not Path(path).exists():
        return 0, []
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        # Checkpoints are written atomically, so this is outside damage: say so and start over.
        log.warning("checkpoint %s is unreadable (%s); training from scratch", path, err)
        return 0, []
    if _canonical(ckpt.get("run_config", {})) != _canonical(run_config):
        log.warning("checkpoint %s was made with a different config; training from scratch", path)
        return 0, []
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt.get("scheduler") is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    if ckpt.get("scaler"):  # a disabled scaler saves {}; loading {} into an enabled one fails
        scaler.load_state_dict(ckpt["scaler"])
    _set_rng_state(ckpt["rng"])
    log.info("resumed from %s at step %d", path, ckpt["step"])
    return int(ckpt["step"]), list(ckpt.get("loss_rows", []))


# ----------------------------------------------------------------------------- loss CSV
class _LossCsv:
    """Rows `step, lr, <keys>`, also kept in memory so each checkpoint carries them.

    On resume the file is rewritten from the checkpoint's rows: rows logged after the checkpoint
    (by the killed run) disappear, and rows lost with the file (Snakemake deletes a job's outputs
    before rerunning it) come back.
    """

    def __init__(self, path, rows: list[list[str]], enabled: bool):
        self.fh, self.writer = None, None
        self.rows = [list(r) for r in rows]
        self.keys = self.rows[0][2:] if self.rows else None
        if not enabled or path is None:
            return
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            csv.writer(fh).writerows(self.rows)
        self.fh = open(path, "a", newline="", buffering=1)
        self.writer = csv.writer(self.fh)

    def _row(self, row: list[str]) -> None:
        self.rows.append(row)
        if self.writer is not None:
            self.writer.writerow(row)

    def write(self, step: int, lr: float, values: dict[str, float]) -> None:
        if self.keys is None:
            self.keys = list(values)
            self._row(["step", "lr", *self.keys])
        self._row([str(step), f"{lr:.8g}", *(f"{values.get(k, float('nan')):.6g}" for k in self.keys)])

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


# ----------------------------------------------------------------------------- the loop
def _to_device(batch: dict, device: torch.device, channels_last: bool) -> dict:
    out = {}
    for k, v in batch.items():
        if torch.is_tensor(v):
            v = v.to(device, non_blocking=True)
            if channels_last and v.dim() == 4 and v.is_floating_point():
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


def _reduce_mean(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Scalars to log, averaged over DDP ranks (one all_reduce)."""
    keys = list(values)
    vec = torch.stack([values[k].detach().float().reshape(()) for k in keys])
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(vec)
        vec /= dist.get_world_size()
    return dict(zip(keys, vec.cpu().tolist()))


def train(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, dataset, step: StepFn,
          cfg: LoopConfig, checkpoint: str | os.PathLike | None, loss_csv: str | os.PathLike | None,
          run_config: dict) -> nn.Module:
    """Train `model` for cfg.iterations steps (resuming from `checkpoint`); return the bare model.

    `step(model, batch)` gets the (possibly DDP-wrapped) model and a batch on the device (plus
    `batch["_step"]`, the 0-based global step as an int) and returns a dict of scalar tensors with key
    'loss'; the loop does backward, optimizer and
    scheduler steps. The optimizer and scheduler must be built on `model`'s parameters.
    """
    device = resolve_device(cfg.device)
    device, created_group = init_distributed(device)
    rank, world, _ = dist_env() if is_distributed() else (0, 1, 0)
    on_cuda = device.type == "cuda"
    use_amp = cfg.amp and on_cuda
    channels_last = cfg.channels_last

    place_model(model, device, channels_last)
    # Optimizer state created before .to(device) is moved by load_state_dict; fresh state is lazy.
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    random.seed(cfg.seed)
    start, loss_rows = _load_checkpoint(checkpoint, model, optimizer, scheduler, scaler, run_config)

    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if on_cuda else None)

    sampler = StepBatchSampler(len(dataset), cfg.batch_size, cfg.seed, start, cfg.iterations, rank, world)
    # A private generator: DataLoader draws a base seed per iterator, which must not consume the
    # global RNG (that would make resumed and uninterrupted runs diverge).
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers, pin_memory=on_cuda,
                        generator=torch.Generator().manual_seed(cfg.seed),
                        persistent_workers=False)
    main = rank == 0
    losses = _LossCsv(loss_csv, loss_rows, enabled=main)
    from tqdm import tqdm

    progress = tqdm(total=cfg.iterations, initial=start, disable=not main, desc="train", mininterval=2.0,
                    dynamic_ncols=True)
    net.train()
    ran = 0
    try:
        for s, batch in enumerate(loader, start=start):
            batch = _to_device(batch, device, channels_last)
            batch["_step"] = s  # 0-based global step, for schedules inside step() (resume-safe)
            lr = optimizer.param_groups[0]["lr"]
            with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
                out = step(net, batch)
            loss = out["loss"]
            if not use_amp and not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at step {s}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if scheduler is not None:
                scheduler.step()
            ran += 1
            values = _reduce_mean(out)
            losses.write(s + 1, lr, values)
            progress.update(1)
            if main and cfg.log_every and (s + 1) % cfg.log_every == 0:
                log.info("step %d/%d lr %.3g %s", s + 1, cfg.iterations, lr,
                         " ".join(f"{k} {v:.4f}" for k, v in values.items()))
            done = s + 1
            if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.iterations:
                if main and checkpoint is not None:
                    _save_checkpoint(checkpoint, done, model, optimizer, scheduler, scaler, run_config,
                                     losses.rows)
                barrier()
        if main and checkpoint is not None and start < cfg.iterations:
            _save_checkpoint(checkpoint, cfg.iterations, model, optimizer, scheduler, scaler, run_config,
                             losses.rows)
        barrier()
    finally:
        progress.close()
        losses.close()
        if created_group:
            dist.destroy_process_group()
    if start >= cfg.iterations:
        log.info("checkpoint %s is already at step %d: nothing to train", checkpoint, start)
    if main:
        log.info("ran %d optimisation steps (from step %d to %d of %d)", ran, start, start + ran, cfg.iterations)
    return model
