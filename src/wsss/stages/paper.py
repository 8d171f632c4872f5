"""Rules table_paper and table_claims: this run set beside what it reproduces.

table_paper (a data source with published numbers: voc, coco14): each row of the paper's tables on
the dataset (the source's record, wsss.data.sources.Published) with the published mIoU, this run's
mIoU at the same stage (miou.csv), its 95 % bootstrap interval over images (intervals.csv) and
whether the published number falls inside it. A row of another DeepLab than the configured one
(deeplab.variant, deeplab.backbone) is listed with no run value and says which config runs it.

table_claims (a source without published numbers: the embedded default): each claim of
wsss.stages.claims.BARS, this run's value, the interval of the difference where intervals.csv
holds it, and whether the claim holds in this run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from wsss.core.io import BadInputError, atomic_path
from wsss.stages.claims import BARS, Bar
from wsss.stages.headline import label
from wsss.stages.tables import STAGES

PAPER_COLUMNS = ["row", "stage", "method", "published", "this_run", "low", "high", "inside", "note"]
CLAIM_COLUMNS = ["claim", "metric", "stage", "bar", "value", "low", "high", "holds"]


def _read(path: str | Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise BadInputError(f"{path}: table missing; re-run its table rule") from None


def _interval(intervals: pd.DataFrame, table: str, metric: str, stage: str, method: str) -> tuple[float, float]:
    hit = intervals[(intervals.table == table) & (intervals.metric == metric) & (intervals.stage == stage)
                    & (intervals.method == method)]
    return (float(hit.low.iloc[0]), float(hit.high.iloc[0])) if len(hit) else (float("nan"), float("nan"))


def paper_table(miou_csv: str, intervals_csv: str, published: list[dict], deeplab: dict, out_csv: str) -> pd.DataFrame:
    """paper.csv: `published` rows ({row, stage, method, miou, deeplab}) beside this run's; `deeplab`
    is the run's {variant, backbone}."""
    miou, intervals = _read(miou_csv), _read(intervals_csv)
    rows = []
    for p in published:
        row = {"row": p["row"], "stage": p["stage"], "method": p["method"], "published": p["miou"],
               "this_run": None, "low": None, "high": None, "inside": "", "note": ""}
        if p.get("deeplab") and tuple(p["deeplab"]) != (deeplab["variant"], deeplab["backbone"]):
            variant, backbone = p["deeplab"]
            row["note"] = f"another DeepLab: run with deeplab.variant {variant}, deeplab.backbone {backbone}"
        else:
            hit = miou[(miou.stage == p["stage"]) & (miou.method == p["method"])]
            if hit.empty:
                row["note"] = f"{p['method']} at {p['stage']} is not in this run's {miou_csv}"
            else:
                low, high = _interval(intervals, "miou", "mIoU", p["stage"], p["method"])
                row.update(this_run=float(hit.mIoU.iloc[0]), low=low, high=high)
                row["inside"] = "" if pd.isna(low) else ("yes" if low <= p["miou"] <= high else "no")
        rows.append(row)
    table = pd.DataFrame(rows, columns=PAPER_COLUMNS)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table


def _long(tables: list[str]) -> pd.DataFrame:
    """(method, stage, metric, value) rows of the run's tables, metrics named as intervals.csv names them."""
    rows = []
    for path in tables:
        t = _read(path)
        if "mIoU" in t:
            rows += [(r.method, r.stage, "mIoU", r.mIoU) for r in t.itertuples()]
        elif "F1" in t:
            rows += [(r.method, r.stage, "F1", r.F1) for r in t.itertuples()]
        elif "confusion_ratio" in t:
            rows += [(r.method, r.stage, f"confusion_{r.coincident}_{r.target}", r.confusion_ratio)
                     for r in t.itertuples()]
    return pd.DataFrame(rows, columns=["method", "stage", "metric", "value"])


def claim_name(bar: Bar) -> str:
    """"pseudo-mask (train) mIoU: EPS − CAM", "pseudo-mask (train) water → boat confusion: EPS / CAM"."""
    metric = {"mIoU": "mIoU", "F1": "boundary F1"}.get(bar.metric)
    if metric is None:  # confusion_<coincident>_<target>
        coincident, target = bar.metric.removeprefix("confusion_").split("_", 1)
        metric = f"{coincident} → {target} confusion"
    sign = "−" if bar.kind == "difference" else "/"
    return f"{STAGES.get(bar.stage, bar.stage)} {metric}: {label(bar.better)} {sign} {label(bar.other)}"


def claims_table(tables: list[str], intervals_csv: str, out_csv: str) -> pd.DataFrame:
    """claims.csv: each claim of BARS this run's tables can check."""
    values, intervals = _long(tables), _read(intervals_csv)
    rows = []
    for bar in BARS:
        at = values[(values.metric == bar.metric) & (values.stage == bar.stage)].set_index("method").value
        if bar.better not in at or bar.other not in at:
            continue
        value = float(bar.values(at.to_frame().T).iloc[0])
        sign = "≤" if bar.at_most else ">" if bar.strict else "≥"
        low = high = float("nan")
        if bar.kind == "difference":
            table = "miou" if bar.metric == "mIoU" else "boundary" if bar.metric == "F1" else "confusion_ratio"
            low, high = _interval(intervals, table, bar.metric, bar.stage, bar.label)
        rows.append({"claim": claim_name(bar), "metric": bar.metric, "stage": bar.stage,
                     "bar": f"{sign} {bar.bar:.3g}", "value": round(value, 4), "low": low, "high": high,
                     "holds": "" if pd.isna(value) else "yes" if bar.holds(pd.Series([value])) else "no"})
    table = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table
