"""Real SLURM: a single-node cluster on localhost runs the tiny config through profiles/slurm, from
the synthetic dataset to a table: the CAM classifier, its maps, its pseudo-masks and their mIoU.

tests/slurm/start.sh installs (apt) and starts munged + slurmctld + slurmd with one fake GPU;
the run goes through `snakemake --profile profiles/slurm --profile tests/slurm/profile`;
tests/slurm/stop.sh stops exactly the daemons start.sh started, also when the run fails.

Needs root (daemons, apt). Skipped otherwise, unless WSSS_REQUIRE_SLURM=1 (set by
`make test-slurm`), where a missing prerequisite is a failure, never a silent skip.
WSSS_SLURM_SNAKEMAKE_ARGS (e.g. "--verbose") adds options to the Snakemake run, for debugging.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import REPO, SNAKEFILE, TINY
from wsss.core.io import read_id_list

pytestmark = pytest.mark.slurm

HARNESS = REPO / "tests" / "slurm"
RUN_TIMEOUT = 600  # seconds; a healthy run takes ~2-3 min (each of the 8 jobs costs ~20 s of polling)
TARGET = "results/eval/pseudo/cam/miou.json"
# The jobs of TARGET with methods: [cam] (one classifier, no saliency), each submitted with sbatch.
# The map shards are read in place and deleted once read (classifier.infer.keep_maps false): no merge_cams.
RULES = {"synthesize_dataset", "prepare_dataset", "train_classifier", "infer_cams", "make_pseudo_masks",
         "merge_pseudo_masks", "evaluate_shard", "evaluate_miou"}


def _missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "needs root to start munged/slurmctld/slurmd (run `make test-slurm` as root)"
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        return "SLURM is not installed and apt-get is unavailable to install it"
    return None


@pytest.fixture(scope="module")
def slurm_cluster():
    """(environment for SLURM clients, cluster scratch dir); the daemons stop even on failure."""
    reason = _missing_prerequisite()
    if reason:
        if os.environ.get("WSSS_REQUIRE_SLURM") == "1":
            pytest.fail(f"WSSS_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    # A private scratch dir, not pytest's tmp_path: pytest prunes old /tmp/pytest-of-<user>
    # dirs when other sessions start, and losing the pid files and slurm.conf mid-run would
    # orphan the daemons.
    cluster = Path(tempfile.mkdtemp(prefix="wsss-slurm-"))
    # A SIGTERM (CI cancelling the job, `timeout`) would end pytest without running `finally`:
    # turn it into an exception so the daemons are still stopped.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        start = subprocess.run([str(HARNESS / "start.sh"), str(cluster)], capture_output=True, text=True,
                               timeout=600)
        assert start.returncode == 0, f"start.sh failed ({start.returncode}):\n{start.stdout}\n{start.stderr}"
        yield {**os.environ, "SLURM_CONF": str(cluster / "slurm.conf"), "OMP_NUM_THREADS": "1"}, cluster
    finally:
        subprocess.run([str(HARNESS / "stop.sh"), str(cluster)], timeout=120)
        shutil.rmtree(cluster, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _diagnostics(env: dict, cluster: Path, run_dir: Path) -> str:
    """What a failed run leaves to look at: queue, daemon logs, the jobs' SLURM logs."""
    parts = [subprocess.run(["squeue", "-a"], env=env, capture_output=True, text=True, timeout=30).stdout]
    logs = [cluster / "log/slurmctld.log", cluster / "log/slurmd.log", *sorted(run_dir.rglob("slurm_logs/**/*.log"))]
    for log in logs:
        if log.exists():
            parts.append(f"--- {log}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-25:]))
    return "\n".join(parts)


def _slurm(args: list[str], env: dict) -> str:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=30, check=True).stdout


def test_tiny_config_runs_through_slurm_profile(slurm_cluster):
    slurm_env, cluster = slurm_cluster
    base = Path(tempfile.mkdtemp(prefix="wsss-slurm-run-"))
    try:
        _run_and_check(slurm_env, cluster, base)
    except KeyboardInterrupt:
        shutil.rmtree(base, ignore_errors=True)
        raise
    # Kept for inspection when a check above failed; removed after a passing run.
    shutil.rmtree(base, ignore_errors=True)


def _run_and_check(slurm_env: dict, cluster: Path, base: Path) -> None:
    workdir = base / "run"
    prepared = "resources/synthetic/prepared"  # tiny.yaml's dataset.root + /prepared
    # tiny.yaml keeps the maps for the tests that read them; here they go as on a real run
    base.mkdir(parents=True, exist_ok=True)
    (base / "maps_deleted.yaml").write_text("classifier:\n  infer:\n    keep_maps: false\n")
    # Targets go first: --configfile takes several values and would swallow them.
    cmd = ["timeout", "-k", "10", str(RUN_TIMEOUT),
           sys.executable, "-m", "snakemake", TARGET, "-s", str(SNAKEFILE), "--directory", str(workdir),
           "--profile", "profiles/slurm", "--profile", "tests/slurm/profile", "--workflow-profile", "none",
           "--slurm-logdir", str(base / "slurm_logs"),
           "--configfile", str(TINY), str(base / "maps_deleted.yaml"), "--config", "methods=[cam]",
           *os.environ.get("WSSS_SLURM_SNAKEMAKE_ARGS", "").split()]
    # Snakemake ignores SIGTERM while it polls: `timeout -k` escalates to SIGKILL. Its own
    # session lets the whole tree (timeout, snakemake, sbatch/squeue) be killed if the test is.
    proc = subprocess.Popen(cmd, cwd=REPO, env=slurm_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=RUN_TIMEOUT + 30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode != 0:
        killed = proc.returncode in (124, -9, 137)
        what = f"did not finish in {RUN_TIMEOUT} s" if killed else f"failed ({proc.returncode})"
        pytest.fail(f"snakemake on SLURM {what} (run dir kept: {base}):\n{out[-5000:]}\n"
                    f"{_diagnostics(slurm_env, cluster, base)}")

    # Every job went through sbatch (none ran locally) and was watched with squeue.
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", out))
    assert len(submitted) == len(RULES), f"expected {sorted(RULES)} on SLURM:\n{out[-4000:]}"

    # The outputs are the real prepared dataset ...
    prep = workdir / prepared
    train_aug, val = read_id_list(prep / "lists/train_aug.txt"), read_id_list(prep / "lists/val.txt")
    assert len(train_aug) == 40 and len(val) == 12
    assert len(list((prep / "SegmentationClassAug").glob("*.png"))) == len(train_aug) + len(val)
    assert (workdir / "logs/prepare_dataset/prepare_dataset.log").exists()
    # ... a trained classifier, its maps and pseudo-masks for every train_aug image ...
    from wsss.core.io import read_label_png
    from wsss.metrics.confusion_matrix import ConfusionMatrix

    assert (workdir / "results/classifier/cam/model.pt").stat().st_size > 0
    assert sorted(p.stem for p in (workdir / "results/pseudo_masks/cam").glob("*.png")) == sorted(train_aug)
    assert not list((workdir / "results/shards/cams/cam").glob("*"))  # each map shard deleted once read
    # ... and the table: the mIoU of those pseudo-masks on the train split, recomputed here.
    result = json.loads((workdir / TARGET).read_text())
    assert (result["method"], result["stage"]) == ("cam", "pseudo")
    classes = read_id_list(prep / "classes.txt")
    cm = ConfusionMatrix(len(classes) + 1)
    train = read_id_list(prep / "lists/train.txt")
    for i in train:
        cm.update(read_label_png(prep / f"SegmentationClassAug/{i}.png"),
                  read_label_png(workdir / f"results/pseudo_masks/cam/{i}.png"), i)
    assert result["miou"] == pytest.approx(cm.miou(), abs=1e-12) and result["images"] == len(train)

    # Each job's SLURM record: completed; only the GPU-flagged one was scheduled on the (fake) GPU
    # (--gpus=1 reached slurmctld as gres); the GPU rules ran without one (gpu: 0 in the overlay).
    jobs = {}
    for slurm_id in submitted.values():
        info = _slurm(["scontrol", "show", "job", slurm_id], slurm_env)
        rule = re.search(r"Comment=rule_(\w+?)(?:_wildcards|\s|$)", info).group(1)
        jobs[rule] = info
        assert "JobState=COMPLETED" in info, info
    assert set(jobs) == RULES
    assert "TresPerJob=gres:gpu:1" in jobs["prepare_dataset"], jobs["prepare_dataset"]
    for rule in RULES - {"prepare_dataset"}:
        assert "TresPerJob" not in jobs[rule], jobs[rule]
    # The jobs' own SLURM logs were kept (overlay) and show the rules running inside the allocation.
    logs = [p.read_text() for p in (base / "slurm_logs").rglob("*.log")]
    for rule in ("prepare_dataset", "train_classifier", "evaluate_miou"):
        assert any(rule in text for text in logs), rule
