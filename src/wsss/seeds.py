"""`make seeds`: the embedded default over a grid of global seeds × data seeds × CPU kernel sets, so
a claim about EPS vs CAM is checked against luck and against another machine's rounding.

Each cell is a full run of the DAG in its own work folder (`<out>/runs/<cell>`), with
`--config seed=S` and `dataset.synthetic.seed=D`, and `ATEN_CPU_CAPABILITY=default` for the
`default` kernel set (another CPU's float rounding on this one; `native` leaves it unset). It writes
`seeds.csv` (one row per cell × method × stage × metric) and `seeds_summary.csv` (mean ± std per
method × stage × metric, and per comparison the minimum margin over the cells). Slow: 12 cells of a
`make run` each; it belongs to neither `make test` nor `make run`.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from wsss.io import atomic_path

REPO = Path(__file__).resolve().parents[2]

# The bars: (metric, stage, better method, worse method, minimum margin).
MARGINS = [("mIoU", "pseudo", "eps", "cam", 8.0), ("mIoU", "deeplab", "eps", "cam", 8.0),
           ("F1", "pseudo", "eps", "cam", 0.0)]


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


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """mean ± std per (method, stage, metric), then each MARGINS comparison's minimum over cells."""
    stats = (rows.groupby(["metric", "stage", "method"], sort=False)["value"]
             .agg(["mean", "std", "min", "max", "count"]).reset_index())
    stats["kind"] = "value"
    cells = [c for c in ("seed", "data_seed", "kernel") if c in rows]
    margins = []
    for metric, stage, better, worse, bar in MARGINS:
        part = rows[(rows.metric == metric) & (rows.stage == stage)]
        wide = part.pivot_table(index=cells, columns="method", values="value")
        if better not in wide or worse not in wide:
            continue
        diff = wide[better] - wide[worse]
        margins.append({"metric": metric, "stage": stage, "method": f"{better} - {worse}", "mean": diff.mean(),
                        "std": diff.std(), "min": diff.min(), "max": diff.max(), "count": len(diff),
                        "kind": "margin", "bar": bar, "holds": bool(diff.min() > bar)})
    return pd.concat([stats, pd.DataFrame(margins)], ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wsss.seeds", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/bench", help="folder of seeds.csv, seeds_summary.csv and runs/")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--data-seeds", type=int, nargs="+", default=[0, 3])
    ap.add_argument("--kernels", nargs="+", default=["native", "default"], choices=["native", "default"])
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args(argv)
    out = Path(args.out)
    rows = []
    for seed, data_seed, kernel in itertools.product(args.seeds, args.data_seeds, args.kernels):
        workdir = out / "runs" / cell_name(seed, data_seed, kernel)
        run_cell(workdir, seed, data_seed, kernel, args.cores)
        rows += collect(workdir / "results" / "tables", {"seed": seed, "data_seed": data_seed, "kernel": kernel})
    table = pd.DataFrame(rows)
    with atomic_path(out / "seeds.csv") as tmp:
        table.to_csv(tmp, index=False)
    summary = summarize(table)
    with atomic_path(out / "seeds_summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    print(summary.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
