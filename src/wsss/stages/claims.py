"""The claims of the embedded default, checked in every run of `make seeds`' grid: EPS over CAM
by 8 mIoU points on the train pseudo-masks and after DeepLab, a better boundary F1, at most a third
of CAM's water -> boat confusion, and DeepLab on EPS masks at 85 % of DeepLab on the ground truth.
Read by the report's seeds tables (rule table_seeds) and by the README's seeds blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from wsss.core.io import atomic_path


@dataclass(frozen=True)
class Bar:
    """One claim checked in every cell: `better` vs `other` on (metric, stage).

    kind "difference": better - other >= bar (strictly above when `strict`); kind "ratio":
    better / other <= bar (`at_most`) or >= bar.
    """

    metric: str
    stage: str
    better: str
    other: str
    kind: str
    bar: float
    strict: bool = False
    at_most: bool = False

    @property
    def label(self) -> str:
        return f"{self.better} - {self.other}" if self.kind == "difference" else f"{self.better} / {self.other}"

    def values(self, wide: pd.DataFrame) -> pd.Series:
        a, b = wide[self.better], wide[self.other]
        return a - b if self.kind == "difference" else a / b

    def holds(self, values: pd.Series) -> bool:
        if self.at_most:
            return bool((values <= self.bar).all())
        return bool((values > self.bar).all() if self.strict else (values >= self.bar).all())


BARS = [Bar("mIoU", "pseudo", "eps", "cam", "difference", 8.0),
        Bar("mIoU", "deeplab", "eps", "cam", "difference", 8.0),
        Bar("F1", "pseudo", "eps", "cam", "difference", 0.0, strict=True),
        Bar("confusion_water_boat", "pseudo", "eps", "cam", "ratio", 1 / 3, at_most=True),
        Bar("mIoU", "deeplab", "eps", "gt", "ratio", 0.85)]


CELL_KEYS = ("seed", "data_seed", "kernel")


def claim_values(rows: pd.DataFrame):
    """(bar, its value in every cell) for each BARS claim the rows can check, cells as the index."""
    cells = [c for c in CELL_KEYS if c in rows]
    for bar in BARS:
        part = rows[(rows.metric == bar.metric) & (rows.stage == bar.stage)]
        wide = part.pivot_table(index=cells, columns="method", values="value")
        if bar.better in wide and bar.other in wide:
            yield bar, bar.values(wide)


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """mean ± std per (method, stage, metric), then each BARS claim over the cells: its mean, std,
    min, max, the worst cell's value and whether it holds in every cell."""
    stats = (rows.groupby(["metric", "stage", "method"], sort=False)["value"]
             .agg(["mean", "std", "min", "max", "count"]).reset_index())
    stats["kind"] = "value"
    claims = [{"metric": bar.metric, "stage": bar.stage, "method": bar.label, "mean": values.mean(),
               "std": values.std(), "min": values.min(), "max": values.max(), "count": len(values),
               "kind": bar.kind, "bar": bar.bar, "at_most": bar.at_most, "strict": bar.strict,
               "worst": values.max() if bar.at_most else values.min(), "holds": bar.holds(values)}
              for bar, values in claim_values(rows)]
    return pd.concat([stats, pd.DataFrame(claims)], ignore_index=True)


def cell_margins(rows: pd.DataFrame) -> pd.DataFrame:
    """Each BARS claim's value in every cell (one row per cell, one column per claim, named by
    `claim_key`), and whether the cell meets it (`<key> holds`): the grid's evidence cell by cell."""
    cells = [c for c in CELL_KEYS if c in rows]
    out = rows[cells].drop_duplicates().set_index(cells).sort_index()
    for bar, values in claim_values(rows):
        out[claim_key(bar)] = values
        out[f"{claim_key(bar)} holds"] = [bar.holds(pd.Series([v])) for v in values.reindex(out.index)]
    return out.reset_index()


def claim_key(bar: Bar) -> str:
    return f"{bar.metric} {bar.stage}: {bar.label}"


def table_seeds(cells_csv: str | Path, summary_csv: str | Path, out_csv: str | Path,
                runs_csv: str | Path | None = None) -> pd.DataFrame:
    """The report's tables: the summary with the grid it covers and the CPU it ran on, and (to
    `runs_csv`) every run's value of each claim with whether that run meets it."""
    cells = pd.read_csv(cells_csv)
    table = pd.read_csv(summary_csv)
    table["runs"] = len(cells.drop_duplicates(["seed", "data_seed", "kernel"]))
    table["cpu"] = cells.cpu.iloc[0] if "cpu" in cells else ""
    with atomic_path(out_csv) as tmp:
        table.round(4).to_csv(tmp, index=False)
    if runs_csv is not None:
        runs = cell_margins(cells)
        with atomic_path(runs_csv) as tmp:
            runs.assign(cpu=table.cpu.iloc[0]).round(4).to_csv(tmp, index=False)
    return table
