"""The shared training loop: deterministic sampling, bit-identical resume (also after SIGKILL),
loss CSV, atomic checkpoints, model files."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from wsss.core.io import BadInputError
from wsss.core.model_files import load_model, save_model
from wsss.core.train_loop import LoopConfig, StepBatchSampler, poly_scheduler, sample_seed, train

ROOT = Path(__file__).resolve().parents[1]
RUN_CONFIG = {"recipe": "toy", "lr": 0.1}


class ToyData:
    """8 items; the 'augmentation' is noise drawn from the per-sample seed only."""

    def __len__(self):
        return 8

    def __getitem__(self, key):
        index, seed = key
        g = torch.Generator().manual_seed(seed)
        base = torch.full((3, 6, 6), float(index) / 8)
        return {"id": f"item{index}", "image": base + 0.1 * torch.randn(3, 6, 6, generator=g),
                "target": torch.tensor([float(index % 2)])}


def make_model():
    torch.manual_seed(1)
    # Dropout makes the global torch RNG matter, BatchNorm makes running stats matter.
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1))


def toy_step(model, batch):
    pred = model(batch["image"])
    loss = nn.functional.binary_cross_entropy_with_logits(pred, batch["target"])
    return {"loss": loss, "mean_pred": pred.mean()}


def run(ckpt, loss_csv, iterations=6, checkpoint_every=3, kill_at=None, crash_at=None, run_config=RUN_CONFIG):
    torch.set_num_threads(1)
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = poly_scheduler(opt, iterations)
    calls = {"n": 0}

    def step(m, batch):
        calls["n"] += 1
        done_before = len(Path(loss_csv).read_text().splitlines()) - 1 if Path(loss_csv).exists() else 0
        if kill_at is not None and done_before + 1 == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # a real kill -9: no cleanup, no finally blocks
        if crash_at is not None and calls["n"] == crash_at:
            raise KeyboardInterrupt("simulated interruption")
        return toy_step(m, batch)

    cfg = LoopConfig(iterations=iterations, batch_size=4, checkpoint_every=checkpoint_every, log_every=2,
                     seed=7, device="cpu")
    return train(model, opt, sched, ToyData(), step, cfg, ckpt, loss_csv, run_config)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_sampler_is_pure_and_ddp_slices_partition_the_global_batch():
    a = StepBatchSampler(10, 4, seed=3, start=0, iterations=5)
    full = list(a)
    assert full == list(StepBatchSampler(10, 4, seed=3, start=0, iterations=5))
    # resuming at step 2 yields exactly the tail
    assert list(StepBatchSampler(10, 4, seed=3, start=2, iterations=5)) == full[2:]
    # the first epoch (steps 0-1 plus half of step 2) visits each index once
    first_epoch = [k[0] for batch in full for k in batch][:10]
    assert sorted(first_epoch) == list(range(10))
    # two ranks together see the single-process batch, slot for slot
    r0 = list(StepBatchSampler(10, 4, seed=3, start=0, iterations=5, rank=0, world_size=2))
    r1 = list(StepBatchSampler(10, 4, seed=3, start=0, iterations=5, rank=1, world_size=2))
    assert [x + y for x, y in zip(r0, r1)] == full
    assert full[0][1][1] == sample_seed(3, 0, 1)
    with pytest.raises(ValueError):
        StepBatchSampler(10, 3, seed=3, start=0, iterations=5, rank=0, world_size=2)


def test_resume_after_interruption_is_bit_identical(tmp_path):
    ref = run(tmp_path / "ref.pt", tmp_path / "ref.csv")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "ck.pt", tmp_path / "ck.csv", crash_at=5)  # dies in step 5, checkpoint at 3
    assert torch.load(tmp_path / "ck.pt", weights_only=False)["step"] == 3
    # Snakemake deletes a failed job's outputs before the rerun: the checkpoint restores the rows
    (tmp_path / "ck.csv").unlink()
    resumed = run(tmp_path / "ck.pt", tmp_path / "ck.csv")
    assert same_weights(ref, resumed)
    assert read_csv(tmp_path / "ck.csv") == read_csv(tmp_path / "ref.csv")
    rows = read_csv(tmp_path / "ref.csv")
    assert rows[0] == ["step", "lr", "loss", "mean_pred"]
    assert [int(r[0]) for r in rows[1:]] == [1, 2, 3, 4, 5, 6]
    # lr follows the poly schedule: step 1 at base lr, decreasing after
    assert float(rows[1][1]) == pytest.approx(0.1) and float(rows[6][1]) < float(rows[2][1])
    # no temp files left beside the checkpoint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.csv", "ck.pt", "ref.csv", "ref.pt"]
    # a finished checkpoint makes a rerun a no-op with the same weights
    again = run(tmp_path / "ck.pt", tmp_path / "ck.csv", crash_at=1)
    assert same_weights(ref, again)


def test_resume_after_sigkill_in_subprocess_is_bit_identical(tmp_path):
    ref = run(tmp_path / "ref.pt", tmp_path / "ref.csv")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(Path(__file__)), str(tmp_path / "k.pt"), str(tmp_path / "k.csv"), "5"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # step 4 was logged after the step-3 checkpoint; the resumed run must drop and redo it
    assert [r[0] for r in read_csv(tmp_path / "k.csv")[1:]] == ["1", "2", "3", "4"]
    proc = subprocess.run(cmd[:-1] + ["0"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    resumed = make_model()
    resumed.load_state_dict(torch.load(tmp_path / "k.pt", weights_only=False)["model"])
    assert same_weights(ref, resumed)
    assert read_csv(tmp_path / "k.csv") == read_csv(tmp_path / "ref.csv")


def test_changed_config_or_corrupt_checkpoint_trains_from_scratch(tmp_path):
    ref = run(tmp_path / "ref.pt", tmp_path / "ref.csv")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "ck.pt", tmp_path / "ck.csv", crash_at=5, run_config={"recipe": "other"})
    # the step-3 checkpoint belongs to another config: it must not be resumed
    fresh = run(tmp_path / "ck.pt", tmp_path / "ck.csv")
    assert same_weights(ref, fresh)
    (tmp_path / "ck.pt").write_bytes(b"not a checkpoint")
    fresh = run(tmp_path / "ck.pt", tmp_path / "ck.csv")
    assert same_weights(ref, fresh)


def test_save_and_load_model(tmp_path):
    model = make_model()
    save_model(tmp_path / "m.pt", model, {"a": 1})
    obj = load_model(tmp_path / "m.pt")
    assert obj["config"] == {"a": 1}
    other = make_model()
    other.load_state_dict(obj["model"])
    assert same_weights(model, other)
    with pytest.raises(BadInputError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"\x00garbage")
    with pytest.raises(BadInputError, match="bad.pt"):
        load_model(tmp_path / "bad.pt")


if __name__ == "__main__":  # the SIGKILL test runs this file as a training process
    ck, loss_csv, kill = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run(ck, loss_csv, kill_at=kill or None)


def test_files_fingerprint_follows_content(tmp_path):
    """A trainer's run config carries it, so changed inputs never resume an old checkpoint."""
    from wsss.core.io import BadInputError
    from wsss.core.train_loop import files_fingerprint

    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    first = files_fingerprint([a, b])
    assert files_fingerprint([a, b]) == first
    b.write_bytes(b"TWO")
    assert files_fingerprint([a, b]) != first
    with pytest.raises(BadInputError, match="missing.png: training file is missing"):
        files_fingerprint([a, tmp_path / "missing.png"])


def official_poly_lrs(lr0: float, max_step: int, steps: int, power: float = 0.9) -> list[float]:
    """The lr each step runs at under the official PolyOptimizer (halbielee/EPS util/torchutils.py):
    set before the step while global_step < max_step, then left as it was."""
    lrs, lr = [], lr0
    for step in range(steps):
        if step < max_step:
            lr = lr0 * (1 - step / max_step) ** power
        lrs.append(lr)
    return lrs


def scheduled_lrs(iterations: int, horizon: int | None, steps: int) -> list[float]:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.01)
    sched = poly_scheduler(opt, iterations, 0.9, horizon)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize("horizon", [None, 12, 5, 1])
def test_poly_horizon_is_the_official_poly_optimizer(horizon):
    assert scheduled_lrs(12, horizon, 12) == pytest.approx(official_poly_lrs(0.01, horizon or 12, 12), rel=1e-12)
    if horizon == 5:  # decayed over 5 steps, then held at lr0 * (1/5)^0.9, never 0
        assert scheduled_lrs(12, 5, 12)[4:] == [pytest.approx(0.01 * 0.2 ** 0.9, rel=1e-12)] * 8
    if horizon is None:  # without a horizon: exactly what the scheduler gave before it had one
        assert scheduled_lrs(12, None, 13) == [0.01 * max(0.0, 1.0 - s / 12) ** 0.9 for s in range(13)]


def test_coco14_schedule_prints_what_the_authors_logs_print():
    """config/coco14.yaml's horizon gives the lr of log/log_coco_eps.log (printed as %.4f); the
    script's reading (no horizon: decay over all 256,500 iterations) does not."""
    from wsss.config.load import load_config

    recipe = load_config(ROOT / "config" / "coco14.yaml")["classifier"]["train"]
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=recipe["lr"])
    logged = poly_scheduler(opt, recipe["iterations"], recipe["poly_power"], recipe["decay_iterations"])
    script = poly_scheduler(opt, recipe["iterations"], recipe["poly_power"])

    def printed(sched, step):
        return f"{recipe['lr'] * sched.lr_lambdas[0](step):.4f}"

    # log lines 1503, 1505, 1538 and the run's last iteration
    assert [printed(logged, s) for s in (75_000, 75_100, 76_750, 256_450)] == ["0.0004", "0.0003", "0.0000", "0.0000"]
    assert printed(script, 75_000) == "0.0073"
    assert recipe["lr"] * logged.lr_lambdas[0](256_499) == pytest.approx(0.01 * (1 / 76_950) ** 0.9)
