"""make bench's training and CAM-inference throughput rows, on a small synthetic dataset.

They measure speed and memory and assert thresholds on what they measure, which depend on the
machine and its load: marked `bench`, run by `make bench`, deselected by `make test`."""

import pytest

from conftest import TINY
from wsss.config.load import load_config
from wsss.data.sources.synthetic.generate import SyntheticConfig, synthesize_dataset
from wsss.data.sources.voc.prepare import prepare_dataset
from wsss_dev.bench.harness import bench_cam_inference, bench_training

CLASSES = ["train", "boat", "ball", "box", "kite", "star"]
pytestmark = pytest.mark.bench


def _prepared(tmp_path, num_train: int):
    """A small synthetic dataset in the prepared layout, and the tiny config with its classes."""
    root = tmp_path / "synthetic"
    synthesize_dataset(root / "VOCdevkit", root / "benchmark_RELEASE", root / "DUTS-TR", root / "context", CLASSES,
                       SyntheticConfig(num_train=num_train, num_val=4, num_saliency=4))
    prepared = root / "prepared"
    prepare_dataset(root / "VOCdevkit", root / "benchmark_RELEASE", prepared, CLASSES)
    cfg = load_config(TINY)
    cfg["dataset"]["classes"] = CLASSES
    return prepared, cfg


def test_training_and_inference_rows_for_each_stage(tmp_path):
    prepared, cfg = _prepared(tmp_path, num_train=16)

    rows = bench_training(prepared, cfg, iterations=2, device="cpu")
    assert [r["stage"] for r in rows] == ["train_classifier_eps", "train_saliency_pfan", "train_deeplab"]
    assert all(r["iterations"] == 2 and r["seconds"] > 0 and r["iterations_per_s"] > 0 for r in rows)

    # tiny.yaml gives one scale list per classifier: the bench model is an eps one, so eps's
    (row,) = bench_cam_inference(prepared, cfg, images=3, device="cpu")
    assert row["images"] == 3 and row["scales"] == "[0.5, 1.0]" and row["flip"] is False


def test_run_bench_measures_every_stage_without_error(tmp_path):
    """Every bench of `make bench` runs (a bench that fails is only recorded: this catches it)."""
    from wsss_dev.bench.harness import run_bench

    prepared, cfg = _prepared(tmp_path, num_train=8)
    table = run_bench(cfg, prepared, tmp_path / "bench.csv", processes=1, eval_images=4, crf_images=2, cam_images=2,
                      train_iterations=1, coco_images=3)
    assert "error" not in table or table["error"].isna().all(), table.get("error")
    assert {"crf", "coco_conversion", "cam_inference", "train_deeplab"} <= set(table["stage"])


def test_peak_memory_counts_the_children():
    """A child process holding 300 MB raises the peak by about that much (DataLoader workers count)."""
    import subprocess
    import sys
    import time

    from wsss_dev.bench.jobs import PeakMemory

    with PeakMemory() as idle:
        time.sleep(0.3)
    code = "import numpy, time; a = numpy.ones(300 * 2**20 // 8); time.sleep(1.0)"
    with PeakMemory() as busy:
        subprocess.run([sys.executable, "-c", code], check=True)
    assert busy.host_mb - idle.host_mb > 250, (idle.host_mb, busy.host_mb)
    assert busy.workers_mb > 250 and idle.workers_mb < 50, (idle.workers_mb, busy.workers_mb)


def test_bench_jobs_sizes_each_heavy_job(tmp_path):
    import yaml

    from wsss_dev.bench.jobs import JOBS, derive_resources, main

    assert main(["--config", str(TINY), "--out", str(tmp_path / "jobs.csv"), "--image-size", "64", "--images", "12",
                 "--warmup", "1", "--iterations", "2", "--cam-images", "2", "--train-aug", "100"]) == 0
    import pandas as pd

    table = pd.read_csv(tmp_path / "jobs.csv")
    assert list(table["job"]) == list(JOBS) and (table["amp"] == False).all()  # noqa: E712 (no AMP on a CPU)
    assert (table["steps_per_s"] > 0).all() and (table["peak_host_mb"] > 100).all()
    cfg = load_config(TINY)
    assert table.set_index("job")["full_steps"].to_dict() == {
        "train_saliency": cfg["saliency"]["train"]["iterations"],
        "train_classifier": cfg["classifier"]["train"]["iterations"],
        "infer_cams": -(-100 // cfg["shards"]), "train_segmentation": cfg["deeplab"]["iterations"]}
    fragment = yaml.safe_load((tmp_path / "jobs.yaml").read_text())
    row = table.set_index("job").loc["train_segmentation"]
    assert fragment["jobs"]["train_segmentation"] == {"threads": cfg["jobs"]["train_segmentation"]["threads"],
                                                      "mem_mb": int(row["mem_mb"]), "runtime": int(row["runtime"])}
    assert set(fragment["jobs"]) == set(JOBS)
    # 1.5 x (30 s + 6000 steps at 2 steps/s) = 75.75 min -> 80; 1.5 x 2100 MB = 3150 -> 3500.
    assert derive_resources({"startup_s": 30, "steps_per_s": 2.0, "peak_host_mb": 2100}, 6000) == \
        {"runtime": 80, "mem_mb": 3500}
