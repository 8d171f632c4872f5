"""The shared training loop: deterministic sampling, bit-identical resume (also after SIGKILL),
loss CSV, atomic checkpoints, model files."""

from __future__ import annotations

import csv
import logging
import os
import re
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


def run(ckpt, loss_csv, iterations=6, checkpoint_every=3, kill_at=None, crash_at=None, run_config=RUN_CONFIG,
        lr=0.1):
    torch.set_num_threads(1)
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
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


def steps_run(log_text: str) -> list[int]:
    """The optimisation steps each train() call reports having run, in order."""
    return [int(n) for n in re.findall(r"ran (\d+) optimisation steps", log_text)]


def messages(caplog, level=logging.INFO) -> list[str]:
    """The wsss.train log lines at `level` exactly (a changed or padded message shows)."""
    return [r.getMessage() for r in caplog.records if r.name == "wsss.core.train_loop" and r.levelno == level]


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
    with pytest.raises(ValueError, match=r"^batch_size 3 is not divisible by the 2 DDP processes$"):
        StepBatchSampler(10, 3, seed=3, start=0, iterations=5, rank=0, world_size=2)
    with pytest.raises(BadInputError, match=r"^training set is empty: check the id list given to the training rule$"):
        StepBatchSampler(0, 4, seed=3, start=0, iterations=5)
    assert list(StepBatchSampler(1, 2, seed=3, start=0, iterations=2)) == [[(0, sample_seed(3, s, k)) for k in (0, 1)]
                                                                           for s in (0, 1)]


def test_resume_after_interruption_is_bit_identical(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="wsss.core.train_loop")
    ref = run(tmp_path / "ref.pt", tmp_path / "ref.csv")
    assert steps_run(caplog.text) == [6] and "resumed from" not in caplog.text
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "ck.pt", tmp_path / "ck.csv", crash_at=5)  # dies in step 5, checkpoint at 3
    assert torch.load(tmp_path / "ck.pt", weights_only=False)["step"] == 3
    # Snakemake deletes a failed job's outputs before the rerun: the checkpoint restores the rows
    (tmp_path / "ck.csv").unlink()
    caplog.clear()
    resumed = run(tmp_path / "ck.pt", tmp_path / "ck.csv")
    # Weights alone cannot tell a resume from a deterministic rerun: 6 - 3 steps ran, from the checkpoint.
    assert messages(caplog)[0] == f"resumed from {tmp_path / 'ck.pt'} at step 3"
    assert messages(caplog)[-1] == "ran 3 optimisation steps (from step 3 to 6 of 6)"
    assert steps_run(caplog.text) == [3]
    assert same_weights(ref, resumed)
    assert read_csv(tmp_path / "ck.csv") == read_csv(tmp_path / "ref.csv")
    rows = read_csv(tmp_path / "ref.csv")
    assert rows[0] == ["step", "lr", "loss", "mean_pred"]
    assert [int(r[0]) for r in rows[1:]] == [1, 2, 3, 4, 5, 6]
    # lr with 8 significant digits, the logged values with 6
    assert all(r[1] == f"{float(r[1]):.8g}" and all(v == f"{float(v):.6g}" for v in r[2:]) for r in rows[1:])
    assert any(len(r[2].lstrip("-0.")) == 6 for r in rows[1:])
    # lr follows the poly schedule: step 1 at base lr, decreasing after
    assert float(rows[1][1]) == pytest.approx(0.1) and float(rows[6][1]) < float(rows[2][1])
    # no temp files left beside the checkpoint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.csv", "ck.pt", "ref.csv", "ref.pt"]
    # a finished checkpoint makes a rerun a no-op with the same weights
    caplog.clear()
    again = run(tmp_path / "ck.pt", tmp_path / "ck.csv", crash_at=1)
    assert same_weights(ref, again)
    assert steps_run(caplog.text) == [0]
    assert messages(caplog)[-2:] == [f"checkpoint {tmp_path / 'ck.pt'} is already at step 6: nothing to train",
                                     "ran 0 optimisation steps (from step 6 to 6 of 6)"]


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
    assert f"resumed from {tmp_path / 'k.pt'} at step 3" in proc.stderr and steps_run(proc.stderr) == [3]
    resumed = make_model()
    resumed.load_state_dict(torch.load(tmp_path / "k.pt", weights_only=False)["model"])
    assert same_weights(ref, resumed)
    assert read_csv(tmp_path / "k.csv") == read_csv(tmp_path / "ref.csv")


def test_changed_config_or_corrupt_checkpoint_trains_from_scratch(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="wsss.core.train_loop")
    ref = run(tmp_path / "ref.pt", tmp_path / "ref.csv")
    # Another lr trains differently, and its step-3 checkpoint stays behind when it dies in step 5.
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "ck.pt", tmp_path / "ck.csv", crash_at=5, run_config={**RUN_CONFIG, "lr": 0.5}, lr=0.5)
    stale = torch.load(tmp_path / "ck.pt", weights_only=False)
    assert stale["step"] == 3 and stale["run_config"]["lr"] == 0.5
    # the stale checkpoint must not be resumed: all 6 steps run again, ending on the reference
    caplog.clear()
    fresh = run(tmp_path / "ck.pt", tmp_path / "ck.csv")
    assert messages(caplog, logging.WARNING) == [
        f"checkpoint {tmp_path / 'ck.pt'} was made with a different config; training from scratch"]
    assert "resumed from" not in caplog.text and steps_run(caplog.text) == [6]
    assert same_weights(ref, fresh)
    assert read_csv(tmp_path / "ck.csv") == read_csv(tmp_path / "ref.csv")
    (tmp_path / "ck.pt").write_bytes(b"not a checkpoint")
    caplog.clear()
    fresh = run(tmp_path / "ck.pt", tmp_path / "ck.csv")
    (warning,) = messages(caplog, logging.WARNING)
    assert warning.startswith(f"checkpoint {tmp_path / 'ck.pt'} is unreadable (invalid load key") and \
        warning.endswith("); training from scratch")
    assert steps_run(caplog.text) == [6]
    assert same_weights(ref, fresh)


def test_resume_without_a_scheduler(tmp_path, caplog):
    """train() takes scheduler=None (a constant lr): its checkpoint and resume work the same."""
    caplog.set_level(logging.INFO, logger="wsss.core.train_loop")
    cfg = LoopConfig(iterations=4, batch_size=4, checkpoint_every=2, log_every=0, seed=7, device="cpu")

    def fit(name, crash_at=None):
        model = make_model()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        calls = {"n": 0}

        def step(m, batch):
            calls["n"] += 1
            if calls["n"] == crash_at:
                raise KeyboardInterrupt
            return toy_step(m, batch)

        return train(model, opt, None, ToyData(), step, cfg, tmp_path / f"{name}.pt", None, RUN_CONFIG)

    ref = fit("ref")
    with pytest.raises(KeyboardInterrupt):
        fit("ck", crash_at=3)
    assert torch.load(tmp_path / "ck.pt", weights_only=False)["scheduler"] is None
    caplog.clear()
    assert same_weights(ref, fit("ck")) and steps_run(caplog.text) == [2]


def test_loss_csv_rows_and_missing_values(tmp_path):
    """Rows `step, lr, <keys of the first row>`; a key missing later is NaN; the folder is created."""
    from wsss.core.train_loop import _LossCsv

    out = _LossCsv(tmp_path / "a" / "b" / "loss.csv", [], enabled=True)
    out.write(1, 0.1, {"loss": 0.5, "cls": 0.25})
    out.write(2, 0.05, {"loss": 0.4})
    out.close()
    assert read_csv(tmp_path / "a" / "b" / "loss.csv") == [["step", "lr", "loss", "cls"], ["1", "0.1", "0.5", "0.25"],
                                                          ["2", "0.05", "0.4", "nan"]]


def test_sampler_length_is_the_steps_left():
    assert len(StepBatchSampler(10, 4, seed=3, start=2, iterations=5)) == 3
    assert len(StepBatchSampler(10, 4, seed=3, start=7, iterations=5)) == 0


def test_run_config_comparison_is_canonical():
    """Key order does not matter; values JSON cannot encode (paths) compare by their text."""
    from wsss.core.train_loop import _canonical

    assert _canonical({"b": Path("x/y"), "a": 1}) == '{"a": 1, "b": "x/y"}'


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
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    ck, loss_csv, kill = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run(ck, loss_csv, kill_at=kill or None)


def test_files_fingerprint_follows_content(tmp_path):
    """A trainer's run config carries it, so changed inputs never resume an old checkpoint."""
    import hashlib

    from wsss.core.io import BadInputError
    from wsss.core.train_loop import files_fingerprint

    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    first = files_fingerprint([a, b])
    # SHA-1 over each file's name, a NUL, and the SHA-1 of its bytes
    parts = [name + b"\0" + hashlib.sha1(data).digest() for name, data in ((b"a.png", b"one"), (b"b.png", b"two"))]
    assert first == hashlib.sha1(b"".join(parts)).hexdigest()
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


def test_checkpoint_carries_an_enabled_scaler_and_the_cuda_rng(tmp_path, monkeypatch):
    """What only a GPU run uses, saved and restored on the CPU: the AMP scaler's state and the CUDA RNG.

    CPU GradScalers are real (torch.amp); the CUDA RNG calls are stand-ins that record what they get.
    """
    from wsss.core.train_loop import _load_checkpoint, _save_checkpoint

    cuda_state = [torch.tensor([7, 1, 9], dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: cuda_state)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=True, init_scale=512.0, growth_interval=7)
    _save_checkpoint(tmp_path / "ck.pt", 3, model, opt, None, scaler, RUN_CONFIG, [["step"]])
    saved = torch.load(tmp_path / "ck.pt", weights_only=False)
    assert saved["scaler"]["scale"] == 512.0 and saved["rng"]["cuda"][0].tolist() == [7, 1, 9]

    fresh = torch.amp.GradScaler("cpu", enabled=True, init_scale=2.0)
    assert _load_checkpoint(tmp_path / "ck.pt", make_model(), torch.optim.SGD(make_model().parameters(), lr=0.1),
                            None, fresh, RUN_CONFIG) == (3, [["step"]])
    assert fresh.get_scale() == 512.0 and fresh.state_dict()["growth_interval"] == 7
    assert len(restored) == 1 and restored[0][0].tolist() == [7, 1, 9]

    # Another number of GPUs cannot take the saved per-device states: they are left alone.
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    _load_checkpoint(tmp_path / "ck.pt", make_model(), torch.optim.SGD(make_model().parameters(), lr=0.1),
                     None, torch.amp.GradScaler("cpu", enabled=True), RUN_CONFIG)
    assert len(restored) == 1
    # Without CUDA nothing is saved for it, and a saved state is not restored.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _save_checkpoint(tmp_path / "cpu.pt", 3, model, opt, None, torch.amp.GradScaler("cpu", enabled=False),
                     RUN_CONFIG, [])
    saved = torch.load(tmp_path / "cpu.pt", weights_only=False)
    assert "cuda" not in saved["rng"] and saved["scaler"] == {}
    _load_checkpoint(tmp_path / "ck.pt", make_model(), torch.optim.SGD(make_model().parameters(), lr=0.1),
                     None, torch.amp.GradScaler("cpu", enabled=True), RUN_CONFIG)
    assert len(restored) == 1
