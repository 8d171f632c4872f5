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
from pathlib import Path

import pandas as pd

from wsss.core.io import atomic_path
from wsss.stages.claims import summarize
from wsss_dev.readme import cpu_name, update_readme

REPO = Path(__file__).resolve().parents[2]


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wsss_dev.seeds", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/bench", help="folder of seeds.csv, seeds_summary.csv and runs/")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--data-seeds", type=int, nargs="+", default=[0, 3])
    ap.add_argument("--kernels", nargs="+", default=["native", "default"], choices=["native", "default"])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--readme",
                    help="README whose seeds block is regenerated from the summary (python -m wsss_dev.readme)")
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
