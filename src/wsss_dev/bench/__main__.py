"""`python -m wsss_dev.bench --config config/config.yaml --prepared resources/synthetic/prepared
--out results/bench/bench.csv`: the harness behind `make bench` (see wsss_dev.bench.harness)."""

from __future__ import annotations

import argparse
import sys

from wsss.config.load import load_config
from wsss.core.runlog import log_to
from wsss_dev.bench.harness import run_bench


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wsss_dev.bench", description=__doc__)
    ap.add_argument("--config", required=True, help="workflow config (device, classifier, deeplab, crf sections)")
    ap.add_argument("--prepared", required=True, help="the prepared dataset folder (R/prepared)")
    ap.add_argument("--out", required=True, help="CSV to write")
    ap.add_argument("--processes", type=int, default=2, help="worker processes to compare with 1")
    ap.add_argument("--eval-images", type=int, default=1449, help="VOC val size by default")
    ap.add_argument("--crf-images", type=int, default=100)
    ap.add_argument("--cam-images", type=int, default=50)
    ap.add_argument("--train-iterations", type=int, default=30)
    ap.add_argument("--coco-images", type=int, default=200, help="synthetic 640x480 images of the COCO conversion")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    with log_to(None):
        table = run_bench(cfg, args.prepared, args.out, args.processes, args.eval_images, args.crf_images,
                          args.cam_images, args.train_iterations, args.coco_images)
    print(table.drop(columns=[c for c in ("host", "cpu", "python", "torch") if c in table]).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
