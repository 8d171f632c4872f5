"""An evaluation as the workflow runs it, in-process: `shards` evaluate_shard jobs, then the job
that sums them (wsss.stages.evaluation)."""

from __future__ import annotations

from pathlib import Path

from wsss.stages.evaluation import EvalLabel, evaluate_boundary, evaluate_confusion_ratio, evaluate_miou, evaluate_shard


def run_evaluation(kind: str, pred_dir, ids_file, work, label: EvalLabel, shards: int = 1, *, gt_dir=None,
                   classes_file=None, boundary_dir=None, context_dir=None, pairs=None, tolerance=1.0) -> dict:
    work = Path(work)
    files = [str(work / f"{label.method}_{label.stage}_{kind}_{s}.npz") for s in range(shards)]
    reads = {"miou": dict(gt_dir=str(gt_dir), classes_file=str(classes_file)),
             "boundary": dict(boundary_dir=str(boundary_dir), tolerance=tolerance),
             "confusion_ratio": dict(gt_dir=str(gt_dir), classes_file=str(classes_file),
                                     context_dir=str(context_dir), pairs=pairs)}[kind]
    for s, f in enumerate(files):
        evaluate_shard(kind, str(pred_dir), str(ids_file), f, shard=s, num_shards=shards, **reads)
    stem = work / f"{label.method}_{label.stage}_{kind}"
    if kind == "miou":
        return evaluate_miou(files, str(classes_file), f"{stem}_matrix.npz", f"{stem}.json", label,
                             f"{stem}_per_image.npz")
    if kind == "boundary":
        return evaluate_boundary(files, str(boundary_dir), f"{stem}.json", label, tolerance, f"{stem}_per_image.npz")
    return evaluate_confusion_ratio(files, str(classes_file), str(context_dir), pairs, f"{stem}.json", label,
                                    f"{stem}_per_image.npz")
