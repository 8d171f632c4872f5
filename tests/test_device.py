"""Device selection: GPUs shared out between concurrent jobs, the scheduler's choice kept, `auto` says why."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import pytest

from wsss.core.device import claim_gpus, resolve_device

CHILD = """
import os, sys, time
from wsss.core.device import claim_gpus
claim_gpus(int(sys.argv[1]))
print(os.environ.get("CUDA_VISIBLE_DEVICES"), flush=True)
time.sleep(float(sys.argv[2]))  # hold the GPU as a running job does
"""


def _job(n, hold, env):
    return subprocess.Popen([sys.executable, "-c", CHILD, str(n), str(hold)], env=env, stdout=subprocess.PIPE,
                            text=True)


def test_concurrent_gpu_jobs_get_distinct_devices(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(WSSS_FAKE_GPU_COUNT="2", WSSS_GPU_LOCK_DIR=str(tmp_path))
    first = _job(1, 3, env)
    time.sleep(1.0)
    second = _job(1, 0, env)
    out = [p.communicate(timeout=60)[0].strip() for p in (first, second)]
    assert set(out) == {"0", "1"}  # one GPU each
    # the first job has ended: its GPU is free again (a killed job's lock goes with its process)
    third = _job(2, 0, env)
    assert third.communicate(timeout=60)[0].strip() == "0,1"


def test_the_schedulers_choice_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("WSSS_FAKE_GPU_COUNT", "4")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")  # what SLURM set
    assert claim_gpus(1, tmp_path) == [] and os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert claim_gpus(0, tmp_path) == []  # a CPU job claims nothing


def test_auto_says_which_device_and_why(caplog):
    with caplog.at_level(logging.INFO, logger="wsss.core.device"):
        dev = resolve_device("auto")
    assert "device auto:" in caplog.text and dev.type in ("cpu", "cuda")
    if dev.type == "cpu":
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")
