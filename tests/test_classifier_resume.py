"""The classifier trainer (wsss.stages.train_classifier) killed with SIGKILL and rerun: it resumes from its
checkpoint, with DataLoader worker processes (voc12 trains with 8), and ends bit-identical to an
uninterrupted run. This file is also the training process the test starts and kills."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import torch
from test_classifier import SECTION as BASE_SECTION
from test_classifier import write_dataset

ROOT = Path(__file__).resolve().parents[1]
# eps: the trainer with saliency in its batches and a schedule inside its step (sal_warmup).
SECTION = {**BASE_SECTION, "sal_warmup": 2,
           "train": {**BASE_SECTION["train"], "iterations": 6, "checkpoint_every": 3, "num_workers": 2}}


def train_process(root: Path, name: str, kill_in_step: int) -> subprocess.CompletedProcess:
    """Run train_classifier("eps") in a fresh process writing root/<name>/; SIGKILLed inside the
    0-based step `kill_in_step` when it is >= 0."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")]),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(Path(__file__)), str(root), name, str(kill_in_step)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_sigkilled_classifier_training_with_workers_resumes_bit_identical(tmp_path):
    write_dataset(tmp_path)
    straight = train_process(tmp_path, "straight", -1)
    assert straight.returncode == 0, straight.stderr
    assert re.findall(r"ran (\d+) optimisation steps", straight.stderr) == ["6"]

    killed = train_process(tmp_path, "resumed", 4)  # in step 5: the step-3 checkpoint is on disk
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    ckpt = tmp_path / "resumed" / "ckpt.pt"
    assert torch.load(ckpt, weights_only=False)["step"] == 3
    assert not (tmp_path / "resumed" / "model.pt").exists()  # nothing that looks finished
    rows = (tmp_path / "resumed" / "loss.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]  # step 4 ran past the checkpoint

    resumed = train_process(tmp_path, "resumed", -1)
    assert resumed.returncode == 0, resumed.stderr
    # 6 iterations - the step-3 checkpoint: 3 steps, started from it (a restart from step 0 would
    # end with the same weights, so only this shows the resume)
    assert f"resumed from {ckpt} at step 3" in resumed.stderr
    assert re.findall(r"ran (\d+) optimisation steps", resumed.stderr) == ["3"]
    a = torch.load(tmp_path / "straight" / "model.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "model.pt", weights_only=False)
    assert a["config"] == b["config"] and a["model"].keys() == b["model"].keys()
    for k, v in a["model"].items():
        assert torch.equal(b["model"][k], v), k
    # the loss CSV drops the killed run's step 4 and ends as the uninterrupted one
    assert (tmp_path / "resumed" / "loss.csv").read_text() == (tmp_path / "straight" / "loss.csv").read_text()
    assert not ckpt.exists()  # the finished training discards its checkpoint


def _kill_in_step(factory, step_to_die: int):
    """The registered loss factory with a step that SIGKILLs this process at 0-based step `step_to_die`."""
    def make(*args):
        step = factory(*args)

        def dying_step(model, batch):
            if batch["_step"] == step_to_die:
                os.kill(os.getpid(), signal.SIGKILL)  # a real kill -9: no cleanup, no finally blocks
            return step(model, batch)

        return dying_step

    return make


if __name__ == "__main__":
    import wsss.methods.eps_loss
    from wsss.config.settings import classifier_training
    from wsss.methods import classifier
    from wsss.stages.train_classifier import train_classifier

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    torch.set_num_threads(1)
    root, name, kill = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    if kill >= 0:
        wsss.methods.eps_loss.eps_step = _kill_in_step(wsss.methods.eps_loss.eps_step, kill)
    eps = classifier("eps")
    train_classifier(eps, root / "JPEGImages", root / "labels.csv", root / "train.txt", root / name / "model.pt",
                     classifier_training(SECTION, eps), saliency_dir=root / "saliency",
                     checkpoint=root / name / "ckpt.pt", loss_csv=root / name / "loss.csv", seed=3, device="cpu")
