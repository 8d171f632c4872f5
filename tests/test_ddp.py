"""Multi-GPU wiring on CPU: 2-process gloo DDP through the shared loop, launched the way a
gpu=2 training job is (the running script re-executed under torchrun), matches one process.

This file is also the training script: `python tests/test_ddp.py OUT_DIR {single,ddp}`.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from wsss.core.distributed import plan_processes, relaunch, torchrun_command, under_torchrun

ROOT = Path(__file__).resolve().parents[1]
ITERATIONS, BATCH = 6, 4


class ToyData:
    """12 items; augmentation noise comes from the per-sample seed only (as the loop requires)."""

    def __len__(self):
        return 12

    def __getitem__(self, key):
        index, seed = key
        g = torch.Generator().manual_seed(seed)
        image = torch.full((3, 8, 8), index / 12.0) + 0.2 * torch.randn(3, 8, 8, generator=g)
        return {"image": image, "target": torch.tensor([float(index % 3 == 0)])}


def toy_model():
    # No BatchNorm and no dropout: those legitimately differ between one process and per-rank
    # halves of the batch; everything else must agree.
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 1))


def toy_step(model, batch):
    pred = model(batch["image"])
    return {"loss": nn.functional.binary_cross_entropy_with_logits(pred, batch["target"])}


def train_toy(out_dir: Path) -> None:
    """Train the toy model with the shared loop; rank 0 writes model.pt and loss.csv."""
    from wsss.core.distributed import is_main_process
    from wsss.core.model_files import save_model
    from wsss.core.train_loop import LoopConfig, poly_scheduler, train

    torch.set_num_threads(1)
    model = toy_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-4)
    cfg = LoopConfig(iterations=ITERATIONS, batch_size=BATCH, seed=7, device="cpu", log_every=0)
    model = train(model, opt, poly_scheduler(opt, ITERATIONS), ToyData(), toy_step, cfg,
                  checkpoint=out_dir / "ckpt.pt", loss_csv=out_dir / "loss.csv", run_config={"toy": 1})
    if is_main_process():
        save_model(out_dir / "model.pt", model, {"toy": 1})
        (out_dir / "world_size").write_text(os.environ.get("WORLD_SIZE", "1"))


def _losses(path: Path) -> list[float]:
    with open(path, newline="") as fh:
        return [float(row["loss"]) for row in csv.DictReader(fh)]


def test_plan_processes():
    assert plan_processes(0, 0) == 1          # CPU rule
    assert plan_processes(1, 4) == 1          # gpu=1: never torchrun
    assert plan_processes(4, 0) == 1          # gpu=4 granted but no CUDA: one CPU process
    assert plan_processes(4, 1) == 1
    assert plan_processes(2, 2) == 2
    assert plan_processes(4, 2) == 2          # fewer visible than asked: use what is there
    assert plan_processes(2, 8) == 2          # CUDA_VISIBLE_DEVICES not narrowed: only N


def test_torchrun_command_is_standalone():
    cmd = torchrun_command(3, "train.py", ["a"])
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--standalone" in cmd and "--nproc_per_node=3" in cmd and cmd[-2:] == ["train.py", "a"]


def test_relaunch_is_a_no_op_for_one_process_or_inside_torchrun(monkeypatch):
    assert relaunch(1) is False
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert under_torchrun()
    assert relaunch(2) is False               # a rank never relaunches itself


def test_ddp_two_processes_match_single_process(tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    single.mkdir()
    ddp.mkdir()
    train_toy(single)

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    for var in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, __file__, str(ddp), "ddp"], env=env, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (ddp / "world_size").read_text() == "2", "the run did not go through torchrun with 2 ranks"

    from wsss.core.model_files import load_model

    a, b = load_model(single / "model.pt")["model"], load_model(ddp / "model.pt")["model"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=f"parameter {key} differs")
    # The weights must have moved, or the comparison above would prove nothing.
    assert not torch.allclose(a["4.weight"], toy_model().state_dict()["4.weight"])
    # Logged losses are averaged over ranks: the same global-batch loss as one process.
    assert _losses(ddp / "loss.csv") == pytest.approx(_losses(single / "loss.csv"), rel=1e-4, abs=1e-6)


def test_failed_ranks_fail_the_launch(tmp_path):
    # A script whose ranks crash at once (it imports no torch, to keep the test cheap): the
    # relaunching parent must turn torchrun's failure into an error, not a silent success.
    script = tmp_path / "crash.py"
    script.write_text("from wsss.core.distributed import relaunch\n"
                      "if not relaunch(2):\n"
                      "    raise SystemExit('rank failing on purpose')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    for var in ("LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode != 0
    assert "torchrun with 2 processes exited with status" in proc.stderr


def test_relaunch_inside_a_snakemake_script_job(tmp_path):
    # Training rules are `script:` jobs: the relaunch re-executes Snakemake's temporary copy of
    # the script, so every rank must get the job's params and outputs from it.
    (tmp_path / "job.py").write_text(
        "import os\n"
        "from pathlib import Path\n"
        "from wsss.core.distributed import relaunch\n"
        "out = Path(snakemake.output[0])\n"
        "if relaunch(2):\n"
        "    out.write_text(' '.join(sorted(p.name for p in out.parent.glob('rank*'))))\n"
        "else:\n"
        "    (out.parent / f\"rank{os.environ['RANK']}\").write_text(snakemake.params.msg)\n")
    (tmp_path / "Snakefile").write_text(
        "rule job:\n"
        "    output: 'out/done.txt'\n"
        "    params: msg='from-params'\n"
        "    script: 'job.py'\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    for var in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "TORCHELASTIC_RUN_ID"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--workflow-profile", "none"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "out/done.txt").read_text() == "rank0 rank1"
    assert (tmp_path / "out/rank1").read_text() == "from-params"


if __name__ == "__main__":
    out, mode = Path(sys.argv[1]), sys.argv[2]
    sys.path.insert(0, str(ROOT / "src"))
    if mode == "ddp":
        if not relaunch(2):               # parent: runs torchrun; ranks: train below
            train_toy(out)
    else:
        train_toy(out)
