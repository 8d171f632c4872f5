"""`make seeds`: the embedded default over a grid of global seeds × data seeds × CPU kernel sets, so
a claim about EPS vs CAM is checked against luck and against another machine's rounding.

Each cell is a full run of the DAG in its own work folder (`<out>/runs/<cell>`), with
`--config seed=S` and `dataset.synthetic.seed=D`, and `ATEN_CPU_CAPABILITY=default` for the
`default` kernel set (another CPU's float rounding on this one; `native` leaves it unset). It writes
`seeds.csv` (one row per cell × method × stage × metric) and `seeds_summary.csv` (mean ± std per
method × stage × metric, and per claim of BARS its worst cell), rewritten after every cell; an
interrupted grid resumes where it stopped, and `--collect-only` summarises the finished cells. Slow:
12 cells of a `make run` each; it belongs to neither `make test` nor `make run`.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from wsss.core.io import atomic_path
from wsss_dev.readme import cpu_name, update_readme

REPO = Path(__file__).resolve().parents[2]



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


# The claims of the embedded default ("Numbers people can trust"): EPS over CAM by 8 mIoU points on
# the train pseudo-masks and after DeepLab, a better boundary F1, at most a third of CAM's
# water -> boat confusion, and DeepLab on EPS masks at 85 % of DeepLab on the ground truth.
BARS = [Bar("mIoU", "pseudo", "eps", "cam", "difference", 8.0),
        Bar("mIoU", "deeplab", "eps", "cam", "difference", 8.0),
        Bar("F1", "pseudo", "eps", "cam", "difference", 0.0, strict=True),
        Bar("confusion_water_boat", "pseudo", "eps", "cam", "ratio", 1 / 3, at_most=True),
        Bar("mIoU", "deeplab", "eps", "gt", "ratio", 0.85)]


def cell_name(seed: int, data_seed: int, kernel: str) -> str:
    return f"seed{seed}_data{data_seed}_{kernel}"


def run_cell(workdir: Path, seed: int, data_seed: int, kernel: str, cores: int) -> None:
    """One full DAG run of the embedded default (resumes: Snakemake redoes only what is missing)."""
    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if kernel == "default":
        env["ATEN_CPU_CAPABILITY"] = "default"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--directory", str(workdir),
           "--cores", str(cores), "--resources", "gpu=0", "--config", f"seed={seed}",
           f'dataset={{"synthetic": {{"seed": {data_seed}}}}}']
    subprocess.run(cmd, check=True, env=env, cwd=REPO)


def collect(tables: Path, cell: dict) -> list[dict]:
    """Rows (cell keys, method, stage, metric, value) from one run's tables."""
    rows = []
    for name, metric in (("miou.csv", "mIoU"), ("boundary.csv", "F1")):
        df = pd.read_csv(tables / name)
        rows += [{**cell, "method": r.method, "stage": r.stage, "metric": metric, "value": getattr(r, metric)}
                 for r in df.itertuples()]
    ratio = pd.read_csv(tables / "confusion_ratio.csv")
    rows += [{**cell, "method": r.method, "stage": r.stage, "metric": f"confusion_{r.coincident}_{r.target}",
              "value": r.confusion_ratio} for r in ratio.itertuples()]
    return rows


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wsss_dev.seeds", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/bench", help="folder of seeds.csv, seeds_summary.csv and runs/")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--data-seeds", type=int, nargs="+", default=[0, 3])
    ap.add_argument("--kernels", nargs="+", default=["native", "default"], choices=["native", "default"])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--readme", help="README whose seeds block is regenerated from the summary (python -m wsss_dev.readme)")
    ap.add_argument("--collect-only", action="store_true",
                    help="run nothing: summarise the cells whose runs have finished (e.g. after an interrupted grid)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    grid = list(itertools.product(args.seeds, args.data_seeds, args.kernels))
    rows = []
    for seed, data_seed, kernel in grid:
        workdir = out / "runs" / cell_name(seed, data_seed, kernel)
        if not args.collect_only:
            run_cell(workdir, seed, data_seed, kernel, args.cores)
        elif not (workdir / "results" / "tables" / "miou.csv").exists():
            print(f"{workdir}: not finished, left out", file=sys.stderr)
            continue
        rows += collect(workdir / "results" / "tables", {"seed": seed, "data_seed": data_seed, "kernel": kernel})
        # Written after every cell: an interrupted grid still leaves a consistent summary of what ran.
        write_tables(pd.DataFrame(rows), out, planned=len(grid))
    if not rows:
        raise SystemExit(f"{out / 'runs'}: no finished run to summarise; run `make seeds` first")
    if args.readme:
        update_readme(args.readme, out, block="seeds")
    return 0


def write_tables(table: pd.DataFrame, out: Path, planned: int) -> pd.DataFrame:
    """seeds.csv (with the CPU and the grid's planned size) and seeds_summary.csv, atomically."""
    table = table.assign(cpu=cpu_name(), planned=planned)
    with atomic_path(out / "seeds.csv") as tmp:
        table.to_csv(tmp, index=False)
    summary = summarize(table.drop(columns=["cpu", "planned"]))
    with atomic_path(out / "seeds_summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    print(summary.to_string(index=False))
    return summary


if __name__ == "__main__":
    sys.exit(main())
