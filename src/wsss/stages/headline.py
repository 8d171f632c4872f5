"""The headline of a run, as sections of rows: the terminal summary (wsss.stages.summary) prints them
and the report's first page (rule report_headline, workflow/report/workflow.rst) shows them.

Sections: EPS against every other method of each table (mIoU, boundary F1, each confusion ratio) at
every stage, with the 95 % paired bootstrap interval of the difference from intervals.csv; then the
paper-vs-run table (paper.csv, sources with published numbers) or the claims of the embedded default
(claims.csv). Every cell is a value of those CSVs, formatted; nothing here computes a score. Each
section names the CSV it reads.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from wsss import methods
from wsss.core.io import atomic_path

METHOD = "eps"  # the method the paper proposes: every comparison is EPS against another


@dataclass
class Section:
    title: str
    path: str  # the CSV(s) the rows come from
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def text_lines(self) -> list[str]:
        """Aligned columns: the first left, the others right."""
        cells = [self.columns, *self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
                for r in cells]


def label(method: str) -> str:
    """A method's name as the tables print it (CAM, CAM × saliency, EPS, ground truth)."""
    return methods.METHODS[method].label if method in methods.METHODS else method


def _number(value: float, digits: int) -> str:
    return "" if pd.isna(value) else f"{value:.{digits}f}"


# table -> [(metric in intervals.csv, value column, heading, digits, rows filter)]
def _metrics(kind: str, table: pd.DataFrame) -> list[tuple[str, str, str, int, pd.Series]]:
    everything = pd.Series(True, index=table.index)
    if kind == "miou":
        return [("mIoU", "mIoU", "mIoU (%)", 2, everything)]
    if kind == "boundary":
        return [("F1", "F1", "boundary F1 (%)", 2, everything)]
    pairs = table[["target", "coincident"]].drop_duplicates().itertuples(index=False)
    return [(f"confusion_{c}_{t}", "confusion_ratio", f"confusion ratio {c} → {t} (lower is better)", 3,
             (table.target == t) & (table.coincident == c)) for t, c in pairs]


def comparisons(tables: Path) -> list[Section]:
    """One section per table metric, one row per stage: EPS's value, then for each other method its
    value and EPS minus it with the difference's paired 95 % interval (intervals.csv; none where
    evaluation.bootstrap.comparisons lacks the pair, or the value is undefined)."""
    intervals_csv = tables / "intervals.csv"
    intervals = pd.read_csv(intervals_csv) if intervals_csv.is_file() else pd.DataFrame(
        columns=["table", "metric", "stage", "method", "estimate", "low", "high"])
    sections = []
    for kind in ("miou", "boundary", "confusion_ratio"):
        csv = tables / f"{kind}.csv"
        if not csv.is_file():
            continue
        table = pd.read_csv(csv)
        for metric, column, heading, digits, chosen in _metrics(kind, table):
            rows = table[chosen]
            others = [m for m in dict.fromkeys(rows.method) if m != METHOD]
            section = Section(f"{heading}: EPS against each method", f"{csv}, {intervals_csv}",
                              ["stage", "EPS", *(f"{label(m)} (EPS − it [95 %])" for m in others)])
            for stage in dict.fromkeys(rows.stage):
                at = rows[rows.stage == stage].set_index("method")
                if METHOD not in at.index:
                    continue
                cells = [at["stage_name"].iloc[0] if "stage_name" in at else stage,
                         _number(at.loc[METHOD, column], digits)]
                for other in others:
                    if other not in at.index:
                        cells.append("")
                        continue
                    diff = intervals[(intervals.table == kind) & (intervals.metric == metric) &
                                     (intervals.stage == stage) & (intervals.method == f"{METHOD} - {other}")]
                    estimate, interval = at.loc[METHOD, column] - at.loc[other, column], ""
                    if not diff.empty and not diff[["estimate", "low", "high"]].isna().any(axis=None):
                        d = diff.iloc[0]
                        estimate = d.estimate
                        interval = f" [{_number(d.low, digits)}, {_number(d.high, digits)}]"
                    gap = "" if pd.isna(estimate) else f" ({estimate:+.{digits}f}{interval})"
                    cells.append(_number(at.loc[other, column], digits) + gap)
                section.rows.append(cells)
            if section.rows:
                sections.append(section)
    return sections


def against_the_paper(tables: Path) -> list[Section]:
    """The paper-vs-run table (paper.csv) or the embedded default's claims (claims.csv), if built."""
    out = []
    paper, claims = tables / "paper.csv", tables / "claims.csv"
    if paper.is_file():
        t = pd.read_csv(paper, keep_default_na=False)
        section = Section("The paper's numbers beside this run's (mIoU %)", str(paper),
                          ["row of the paper", "published", "this run", "95 % interval", "published inside"])
        section.rows = [[r.row, f"{r.published:g}", _cell(r.this_run), _interval(r.low, r.high), r.inside or r.note]
                        for r in t.itertuples()]
        out.append(section)
    if claims.is_file():
        t = pd.read_csv(claims, keep_default_na=False)
        section = Section("The embedded default's claims, in this run", str(claims),
                          ["claim", "bar", "this run", "95 % interval", "holds"])
        section.rows = [[r.claim, r.bar, _cell(r.value), _interval(r.low, r.high), r.holds] for r in t.itertuples()]
        out.append(section)
    return out


def _cell(value) -> str:
    return "" if value == "" else f"{float(value):.4g}"


def _interval(low, high) -> str:
    return "–" if low == "" or high == "" else f"[{float(low):.4g}, {float(high):.4g}]"


def sections(tables: str | Path) -> list[Section]:
    tables = Path(tables)
    return comparisons(tables) + against_the_paper(tables)


_TABLE = 'style="border-collapse:collapse;margin:0.4em 0 1.2em 0;font-size:0.9em"'
_CELL = 'style="border:1px solid #bbb;padding:2px 8px;text-align:{}"'


def html_section(section: Section) -> str:
    def row(cells, tag):
        return "<tr>" + "".join(f"<{tag} {_CELL.format('left' if i == 0 else 'right')}>{html.escape(c)}</{tag}>"
                                for i, c in enumerate(cells)) + "</tr>"

    return (f"<h3>{html.escape(section.title)}</h3>\n<p><code>{html.escape(section.path)}</code></p>\n"
            f"<table {_TABLE}>\n{row(section.columns, 'th')}\n" + "\n".join(row(r, "td") for r in section.rows)
            + "\n</table>")


def write_html(tables: str | Path, out: str | Path) -> str:
    """The report's first page: the comparisons and the paper/claims table."""
    tables = Path(tables)
    parts = [html_section(s) for s in sections(tables)]
    text = '<div class="eps-headline">\n' + "\n".join(parts) + "\n</div>\n"
    with atomic_path(out) as tmp:
        Path(tmp).write_text(text)
    return text
