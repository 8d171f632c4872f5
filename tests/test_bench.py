"""make bench's training and CAM-inference throughput rows, on a small synthetic dataset."""


from conftest import TINY
from wsss.schema import load_config
from wsss.bench.harness import bench_cam_inference, bench_training
from wsss.data.prepare import prepare_dataset
from wsss.data.synthetic import SyntheticConfig, synthesize_dataset

CLASSES = ["train", "boat", "ball", "box", "kite", "star"]


def test_training_and_inference_rows_for_each_stage(tmp_path):
    root = tmp_path / "synthetic"
    synthesize_dataset(root / "VOCdevkit", root / "benchmark_RELEASE", root / "DUTS-TR", root / "context", CLASSES,
             SyntheticConfig(num_train=16, num_val=4, num_saliency=4))
    prepared = root / "prepared"
    prepare_dataset(root / "VOCdevkit", root / "benchmark_RELEASE", prepared, CLASSES)
    cfg = load_config(TINY)
    cfg["dataset"]["classes"] = CLASSES

    rows = bench_training(prepared, cfg, iterations=2, device="cpu")
    assert [r["stage"] for r in rows] == ["train_classifier_eps", "train_saliency_pfan", "train_deeplab"]
    assert all(r["iterations"] == 2 and r["seconds"] > 0 and r["iterations_per_s"] > 0 for r in rows)

    # tiny.yaml gives one scale list per classifier: the bench model is an eps one, so eps's
    (row,) = bench_cam_inference(prepared, cfg["classifier"], images=3, device="cpu")
    assert row["images"] == 3 and row["scales"] == "[0.5, 1.0]" and row["flip"] is False
