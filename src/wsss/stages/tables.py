"""The paper's tables as CSV (pandas), gathered from the per-(method, stage) evaluation JSONs.

IoU, precision, recall and F1 are written in percent (as the paper reports them), rounded to two
decimals; confusion ratios are plain ratios (three decimals). Rows are ordered by stage
(pseudo-mask → + CRF → DeepLab → + CRF) and then method (in the registry's order: cam, cam_sal, eps, gt), whatever order
the inputs came in, so a table is stable across runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from wsss import methods
from wsss.core.io import BadInputError, atomic_path

# Human-readable stage names for the `stage_name` column and the figures.
STAGES = {
    "pseudo": "pseudo-mask (train)",
    "pseudo_crf": "pseudo-mask + CRF (train)",
    "deeplab": "DeepLab (val)",
    "deeplab_crf": "DeepLab + CRF (val)",
}


def _load(paths: list[str | os.PathLike]) -> list[dict]:
    out = []
    for p in paths:
        try:
            out.append(json.loads(Path(p).read_text()))
        except FileNotFoundError:
            raise BadInputError(f"{p}: evaluation result missing; re-run its evaluate rule") from None
        except json.JSONDecodeError as err:
            raise BadInputError(f"{p}: not valid JSON ({err}); delete it and re-run its evaluate rule") from err
    return out


def _order(df: pd.DataFrame) -> pd.DataFrame:
    stage_rank = {s: k for k, s in enumerate(STAGES)}
    method_rank = {m: k for k, m in enumerate(methods.table_order())}
    df = df.assign(_s=df["stage"].map(lambda s: stage_rank.get(s, len(stage_rank))),
                   _m=df["method"].map(lambda m: method_rank.get(m, len(method_rank))))
    df = df.sort_values(["_s", "_m", "stage", "method"], kind="stable").drop(columns=["_s", "_m"])
    df.insert(2, "stage_name", df["stage"].map(lambda s: STAGES.get(s, s)))
    return df.reset_index(drop=True)


def _pct(x: float | None) -> float | None:
    return None if x is None or x != x else round(100.0 * x, 2)


def _write_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def table_miou(result_jsons: list[str], out_csv: str, out_per_class_csv: str) -> pd.DataFrame:
    """miou.csv (method × stage → mIoU, precision, recall, pixel accuracy) and the per-class IoU table."""
    results = _load(result_jsons)
    rows, per_class = [], []
    for r in results:
        rows.append({"method": r["method"], "stage": r["stage"], "images": r["images"], "mIoU": _pct(r["miou"]),
                     "precision": _pct(r["precision"]), "recall": _pct(r["recall"]),
                     "pixel_accuracy": _pct(r["pixel_accuracy"])})
        per_class.append({"method": r["method"], "stage": r["stage"],
                          **{c: _pct(v) for c, v in zip(r["classes"], r["iou"])}, "mIoU": _pct(r["miou"])})
    table = _order(pd.DataFrame(rows))
    _write_csv(table, out_csv)
    _write_csv(_order(pd.DataFrame(per_class)), out_per_class_csv)
    return table


def table_boundary(result_jsons: list[str], out_csv: str) -> pd.DataFrame:
    """boundary.csv: method × stage → boundary precision, recall, F1 (percent) and the tolerance."""
    rows = [{"method": r["method"], "stage": r["stage"], "images": r["images"], "tolerance_px": r["tolerance"],
             "precision": _pct(r["precision"]), "recall": _pct(r["recall"]), "F1": _pct(r["f1"])}
            for r in _load(result_jsons)]
    table = _order(pd.DataFrame(rows))
    _write_csv(table, out_csv)
    return table


def table_confusion_ratio(result_jsons: list[str], out_csv: str) -> pd.DataFrame:
    """confusion_ratio.csv: method × stage × (target, coincident) → target IoU (percent), confusion ratio."""
    rows = []
    for r in _load(result_jsons):
        for p in r["pairs"]:
            ratio = p["confusion_ratio"]
            rows.append({"method": r["method"], "stage": r["stage"], "images": r["images"], "target": p["target"],
                         "coincident": p["coincident"], "target_IoU": _pct(p["target_iou"]),
                         "confusion_ratio": None if ratio is None else round(ratio, 3)})
    table = _order(pd.DataFrame(rows, columns=["method", "stage", "images", "target", "coincident",
                                               "target_IoU", "confusion_ratio"]))
    _write_csv(table, out_csv)
    return table


def table_ablation(ablation: str, points: list[dict], result_jsons: list[str], out_csv: str) -> pd.DataFrame:
    """ablation_<name>.csv: one row per grid point (wsss.stages.ablation), in grid order → EPS pseudo-mask
    mIoU, precision, recall (percent). `points`: {value, label, configured} per point, in the order
    of `result_jsons` (each point's evaluate_miou JSON)."""
    if len(points) != len(result_jsons):
        raise ValueError(f"{len(points)} points but {len(result_jsons)} results")
    rows = [{"ablation": ablation, "value": p["value"], "label": p["label"], "configured": bool(p["configured"]),
             "method": r["method"], "images": r["images"], "mIoU": _pct(r["miou"]),
             "precision": _pct(r["precision"]), "recall": _pct(r["recall"])}
            for p, r in zip(points, _load(result_jsons))]
    table = pd.DataFrame(rows)
    _write_csv(table, out_csv)
    return table


def released_checkpoints(miou_csv: str, checkpoints: dict[str, str], published: dict[str, float],
                         out_csv: str) -> pd.DataFrame:
    """released_checkpoints.csv: the pseudo-mask mIoU (miou.csv's pseudo rows) of each method whose
    classifier was imported (classifier.checkpoint) beside the authors' published number for the
    released model on this dataset (`published`: the data source's record)."""
    measured = pd.read_csv(miou_csv)
    rows = []
    for _, r in measured[measured.stage == "pseudo"].iterrows():
        record = methods.method(r["method"])
        if record.classifier not in checkpoints or r["method"] not in published:
            continue
        ours = float(r["mIoU"])
        rows.append({"method": r["method"], "checkpoint": checkpoints[record.classifier], "images": int(r["images"]),
                     "mIoU": ours, "published_mIoU": published[r["method"]],
                     "difference": round(ours - published[r["method"]], 2)})
    if not rows:
        raise BadInputError(f"{miou_csv}: no method with a published number reads an imported classifier; "
                            "set classifier.checkpoint (e.g. {cam: PATH, eps: PATH}) to the released checkpoints")
    table = pd.DataFrame(rows)
    _write_csv(table, out_csv)
    return table
