"""What a run found: the end of `make run` (and `make ablations`) and the report's first page.

`python -m wsss.stages.summary results/tables --report results/report.html --seconds 246` prints EPS
against the CAM baseline, in mIoU, on the pseudo-masks (train split) and DeepLab (val), with and
without the CRF, the ground-truth upper bound where it was trained, then the headline: EPS against
each other method at every stage of every table, with the 95 % paired bootstrap interval of the
difference, then the paper-vs-run (or claims) table, the run's wall time and where the report is.
`--html OUT` writes the same sections as the report's first page (rule report_headline). Every number
comes from the run's CSVs (miou.csv, boundary.csv, confusion_ratio.csv, intervals.csv, paper.csv or
claims.csv; ablation_*.csv when the ablations ran); nothing here computes or types one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from wsss.core.io import BadInputError
from wsss.stages import headline
from wsss.stages.tables import STAGES

# The comparison the paper makes: EPS against the CAM baseline.
BASELINE, METHOD, UPPER = "cam", "eps", "gt"


def wall_time(seconds: float) -> str:
    """246 -> "4 min 6 s"; 59 -> "59 s"; 3725 -> "1 h 2 min 5 s"."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] * bool(hours) + [f"{minutes} min"] * bool(hours or minutes) + [f"{secs} s"]
    return " ".join(parts)


def _value(rows: pd.DataFrame, method: str) -> float | None:
    hit = rows.loc[rows.method == method, "mIoU"]
    return None if hit.empty or pd.isna(hit.iloc[0]) else float(hit.iloc[0])


def miou_lines(miou: pd.DataFrame) -> list[str]:
    """One line per stage of miou.csv: CAM, EPS, EPS - CAM (and the ground truth where trained)."""
    upper = UPPER in set(miou.method)
    head = f"{'mIoU (%)':<28}{'CAM':>8}{'EPS':>8}{'EPS - CAM':>11}" + (f"{'ground truth':>14}" if upper else "")
    lines = [head]
    for stage, title in STAGES.items():
        rows = miou[miou.stage == stage]
        cam, eps = _value(rows, BASELINE), _value(rows, METHOD)
        if cam is None or eps is None:
            continue
        line = f"{title:<28}{cam:>8.2f}{eps:>8.2f}{eps - cam:>+11.2f}"
        gt = _value(rows, UPPER)
        lines.append(line + (f"{gt:>14.2f}" if upper and gt is not None else ""))
    return lines


def ablation_lines(tables: Path) -> list[str]:
    """One line per ablation table present: EPS pseudo-mask mIoU at each point, [the configured one]."""
    lines = []
    for csv in sorted(tables.glob("ablation_*.csv")):
        table = pd.read_csv(csv)
        points = [f"[{label} {miou:.2f}]" if configured else f"{label} {miou:.2f}"
                  for label, miou, configured in zip(table.label, table.mIoU, table.configured)]
        lines.append(f"{csv.stem}: " + ", ".join(points))
    return lines


def summary(tables: str | Path, report: str | Path | None = None, seconds: float | None = None) -> str:
    """The text `make run` ends with, from the CSVs in `tables`."""
    tables = Path(tables)
    try:
        miou = pd.read_csv(tables / "miou.csv")
    except FileNotFoundError:
        raise BadInputError(f"{tables / 'miou.csv'}: missing; the run did not reach its tables "
                            "(rerun `make run`, or `snakemake results/tables/miou.csv`)") from None
    out = ["", f"EPS vs the CAM baseline ({tables / 'miou.csv'}; train split for the pseudo-masks, "
               "val for DeepLab):", ""]
    out += ["  " + line for line in miou_lines(miou)]
    for section in headline.sections(tables):
        out += ["", f"{section.title} ({section.path}):"] + ["  " + line for line in section.text_lines()]
    ablations = ablation_lines(tables)
    if ablations:
        out += ["", "EPS pseudo-mask mIoU (%) at each ablation's points, [the configured run] "
                    f"({tables / 'ablation_*.csv'}):"]
        out += ["  " + line for line in ablations]
    out.append("")
    if seconds is not None:
        out.append(f"Wall time: {wall_time(seconds)}")
    if report is not None:
        report = Path(report)
        state = "" if report.is_file() else " (not written: the report step failed or was skipped)"
        out.append(f"Report: {report.resolve()}{state}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", help="folder of the run's tables (results/tables)")
    parser.add_argument("--report", help="the run's report (results/report.html)")
    parser.add_argument("--seconds", type=float, help="the run's wall time in seconds")
    parser.add_argument("--html", help="write the headline as the report's first page to this file instead")
    args = parser.parse_args(argv)
    try:
        if args.html:
            headline.write_html(args.tables, args.html)
        else:
            print(summary(args.tables, args.report, args.seconds))
    except BadInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
