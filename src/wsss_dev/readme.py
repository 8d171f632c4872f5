"""The README's result blocks, generated from result CSVs (numbers are never typed).

The CSVs the README quotes are kept in the repository, in docs/results/ (`default/`: a `make run`'s
tables; `ablations/`: a `make ablations`' ablation tables; the root: a `make seeds` grid), each set
with the machine it ran on (`machine.csv`), and tests/test_summary.py / test_seeds.py check that each
block is what its kept CSVs generate. `make keep-results` copies a run's tables there
(`python -m wsss_dev.readme keep results/tables docs/results/default results`); `make readme` rewrites
the blocks from them: `python -m wsss_dev.readme README.md docs/results/default` the part of README.md
between `<!-- results:start -->` and `<!-- results:end -->` (miou.csv, boundary.csv,
confusion_ratio.csv, saliency.csv), `... docs/results/ablations ablations` the `ablations` block,
`... docs/results seeds` the `seeds` block and `... docs/experiments.md docs/results seeds_runs` the
grid's per-run table. `make run` writes no tracked file. Rows and columns come from the registry
(methods in registration order) and the tables' own stages.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pandas as pd

from wsss import methods
from wsss.core.io import BadInputError, atomic_path
from wsss.stages.claims import BARS, cell_margins, claim_key


def _cell(value) -> str:
    return "" if value is None or pd.isna(value) else f"{value:g}"


def _pivot(df: pd.DataFrame, value: str, stages: dict[str, str]) -> list[str]:
    shown = [m for m in methods.table_order() if m in set(df.method)]
    lines = ["| " + " | ".join(["", *(methods.method(m).label for m in shown)]) + " |",
             "|" + "---|" * (len(shown) + 1)]
    for stage, title in stages.items():
        rows = df[df.stage == stage].set_index("method")
        if rows.empty:
            continue
        lines.append("| " + " | ".join([title, *(_cell(rows[value].get(m)) for m in shown)]) + " |")
    return lines


def cpu_name() -> str:
    """The CPU model and its widest vector ISA (the kernels torch picks natively)."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{model or platform.machine()} ({platform.machine()}, {isa})"


KEPT_DIR = "docs/results"  # where the repository keeps the CSVs its README quotes
MACHINE = "machine.csv"  # beside kept CSVs: the CPU and Python they were made with
KEPT = {"results": ["miou.csv", "boundary.csv", "confusion_ratio.csv", "saliency.csv", "intervals.csv"],
        "ablations": [f"ablation_{name}.csv" for name in ("tau", "lam", "saliency")]}


def _machine(folder: Path) -> tuple[str, str]:
    """(CPU, Python version) of the run whose CSVs are in `folder`: its machine.csv when kept, else
    this machine (a run's own results/tables)."""
    if (folder / MACHINE).is_file():
        row = pd.read_csv(folder / MACHINE, dtype=str).iloc[0]
        return row["cpu"], row["python"]
    return cpu_name(), platform.python_version()


def keep(tables: str | Path, dest: str | Path, block: str = "results") -> list[str]:
    """Copy the CSVs of `block` (KEPT) from a run's `tables` into `dest` with this machine's
    machine.csv, replacing what `dest` held (atomically); returns the names copied."""
    import shutil

    from wsss.core.io import atomic_dir

    tables = Path(tables)
    names = [n for n in KEPT[block] if (tables / n).is_file()]
    if not names:
        raise BadInputError(f"{tables}: none of {', '.join(KEPT[block])}; run `make run` (or `make ablations`) first")
    with atomic_dir(dest) as tmp:
        for name in names:
            shutil.copyfile(tables / name, tmp / name)
        pd.DataFrame([{"cpu": cpu_name(), "python": platform.python_version()}]).to_csv(tmp / MACHINE, index=False)
    return names


def _read(folder: Path, names: list[str], command: str) -> list[pd.DataFrame]:
    try:
        return [pd.read_csv(folder / name) for name in names]
    except FileNotFoundError as err:
        raise BadInputError(f"{err.filename}: missing; run `{command}` (it writes it) first") from None


def results_block(tables: str | Path) -> str:
    """Markdown of the embedded default's results from the CSVs in `tables`."""
    tables = Path(tables)
    miou, boundary = _read(tables, ["miou.csv", "boundary.csv"], "make run")
    stages = {"pseudo": "pseudo-masks (train)", "pseudo_crf": "pseudo-masks + CRF (train)",
              "deeplab": "DeepLab (val)", "deeplab_crf": "DeepLab + CRF (val)"}
    out = ["mIoU (%), `results/tables/miou.csv`:", "", *_pivot(miou, "mIoU", stages), ""]
    tol = _cell(boundary.tolerance_px.iloc[0]) if len(boundary) else ""
    out += [f"Boundary F1 (%, {tol} px tolerance), `results/tables/boundary.csv`:", "",
            *_pivot(boundary, "F1", stages), ""]
    ratio_csv = tables / "confusion_ratio.csv"
    if ratio_csv.exists():
        ratio = pd.read_csv(ratio_csv)
        for (target, coincident), part in ratio.groupby(["target", "coincident"], sort=False):
            out += [f"Confusion ratio {coincident} → {target} (lower is better), `results/tables/confusion_ratio.csv`:",
                    "", *_pivot(part, "confusion_ratio", stages), ""]
    intervals_csv = tables / "intervals.csv"
    if intervals_csv.exists():
        out += _intervals(pd.read_csv(intervals_csv), stages)
    sal_csv = tables / "saliency.csv"
    if sal_csv.exists():
        sal = pd.read_csv(sal_csv)
        out += ["Saliency on the held-out saliency images, `results/tables/saliency.csv`:", "",
                "| " + " | ".join(sal.columns) + " |", "|" + "---|" * len(sal.columns)]
        out += ["| " + " | ".join(str(v) for v in row) + " |" for row in sal.itertuples(index=False)]
        out.append("")
    cpu, python = _machine(tables)
    out.append(f"Generated by `python -m wsss_dev.readme` from the CSVs of a `make run` on {cpu}, Python {python}"
               f"{_kept(tables)}.")
    return "\n".join(out)


def _intervals(table: pd.DataFrame, stages: dict[str, str]) -> list[str]:
    """The differences of intervals.csv (a - b rows) with their paired bootstrap interval."""
    diffs = table[table.method.str.contains(" - ")]
    if diffs.empty:
        return []
    first = diffs.iloc[0]
    out = [f"Differences with a {first.level:.0%} paired bootstrap interval over images ({first.resamples} resamples; "
           "`results/tables/intervals.csv`, which also holds each method's own interval):", "",
           "| difference | metric | stage | estimate | interval |", "|---|---|---|---|---|"]
    for row in diffs.itertuples(index=False):
        digits = 3 if row.table == "confusion_ratio" else 2  # ratios, or points of mIoU / F1
        out.append(f"| {row.method} | {row.metric} | {stages.get(row.stage, row.stage)} | {row.estimate:.{digits}f} | "
                   f"[{row.low:.{digits}f}, {row.high:.{digits}f}] |")
    return out + [""]


def _kept(folder: Path) -> str:
    """", kept in `docs/results/default/`" for a kept set (its place in the repository)."""
    return f", kept in `{KEPT_DIR}/{folder.name}/`" if (folder / MACHINE).is_file() else ""


SEED_ROWS = {("mIoU", "pseudo"): "pseudo-mask mIoU (train)", ("mIoU", "pseudo_crf"): "pseudo-mask + CRF mIoU (train)",
             ("mIoU", "deeplab"): "DeepLab mIoU (val)", ("mIoU", "deeplab_crf"): "DeepLab + CRF mIoU (val)",
             ("F1", "pseudo"): "boundary F1 (train)",
             ("confusion_water_boat", "pseudo"): "water → boat confusion (train)"}


def seeds_block(bench: str | Path) -> str:
    """Markdown of `make seeds`: mean ± std per method and every claim's worst cell, from
    seeds.csv / seeds_summary.csv in `bench`."""
    bench = Path(bench)
    cells, summary = _read(bench, ["seeds.csv", "seeds_summary.csv"], "make seeds")
    values = summary[summary.kind == "value"]
    shown = [m for m in methods.table_order() if m in set(values.method)]
    grid = cells.drop_duplicates(["seed", "data_seed", "kernel"])
    more = "planned" in cells and cells.planned.iloc[0] > len(grid)
    planned = f" (of {cells.planned.iloc[0]} planned)" if more else ""
    out = [f"Mean ± std over {len(grid)} runs{planned} of the embedded default: global seeds "
           f"{sorted(set(grid.seed))} × data seeds {sorted(set(grid.data_seed))} × CPU kernels "
           f"{sorted(set(grid.kernel))} (`ATEN_CPU_CAPABILITY=default` vs unset), on "
           f"{_grid_cpu(cells)}; `results/bench/seeds_summary.csv`:", "",
           "| " + " | ".join(["", *(methods.method(m).label for m in shown)]) + " |", "|" + "---|" * (len(shown) + 1)]
    for (metric, stage), title in SEED_ROWS.items():
        rows = values[(values.metric == metric) & (values.stage == stage)].set_index("method")
        if rows.empty:
            continue
        out.append("| " + " | ".join([title, *(f"{rows.loc[m, 'mean']:.3g} ± {rows.loc[m, 'std']:.2g}"
                                               if m in rows.index else "" for m in shown)]) + " |")
    out += ["", "The claims, checked in every run (worst = the least favourable run):", "",
            "| claim | bar | worst | mean ± std | holds in every run |", "|---|---|---|---|---|"]
    for claim in summary[summary.kind != "value"].itertuples():
        op = "≤" if claim.at_most else ">" if claim.strict else "≥"
        title = SEED_ROWS.get((claim.metric, claim.stage), f"{claim.metric} ({claim.stage})")
        out.append(f"| {title}: {claim.method} | {op} {claim.bar:.3g} | {claim.worst:.3g} | "
                   f"{claim.mean:.3g} ± {claim.std:.2g} | {'yes' if claim.holds else '**no**'} |")
    out += ["", "Every run (seed / data seed / kernels; a bar missed is in bold), from `results/bench/seeds.csv`:", "",
            *_cells_table(cells), "", "Generated by `python -m wsss_dev.readme` from the CSVs of `make seeds`."]
    return "\n".join(out)


def _grid_cpu(cells: pd.DataFrame) -> str:
    """The CPU a grid ran on (seeds.csv records it; this machine's for an older file without it)."""
    return cells.cpu.iloc[0] if "cpu" in cells else cpu_name()


def _cells_table(cells: pd.DataFrame) -> list[str]:
    """One row per run of the grid: each claim's value there, bold where that run misses its bar."""

    margins = cell_margins(cells)
    bars = [bar for bar in BARS if claim_key(bar) in margins]
    titles = [f"{SEED_ROWS.get((b.metric, b.stage), f'{b.metric} ({b.stage})')}: {b.label}" for b in bars]
    lines = ["| run | " + " | ".join(titles) + " |", "|" + "---|" * (len(bars) + 1)]
    for row in margins.to_dict("records"):
        values = [f"{row[claim_key(b)]:.3g}" if row[f"{claim_key(b)} holds"] else f"**{row[claim_key(b)]:.3g}**"
                  for b in bars]
        lines.append(f"| {row['seed']} / {row['data_seed']} / {row['kernel']} | " + " | ".join(values) + " |")
    return lines


ABLATIONS = {"tau": "τ (`classifier.tau`)", "lam": "λ (`classifier.lam`)", "saliency": "saliency EPS trains on"}


def ablations_block(tables: str | Path) -> str:
    """Markdown of the paper's ablations on the run whose tables are in `tables` (`make ablations`):
    one row per ablation, one column per grid point, EPS pseudo-mask mIoU."""
    tables = Path(tables)
    present = {name: title for name, title in ABLATIONS.items() if (tables / f"ablation_{name}.csv").exists()}
    if not present:
        raise BadInputError(f"{tables}: no ablation_{{{','.join(ABLATIONS)}}}.csv; run `make ablations` (it writes "
                            "them) first")
    split = set()
    out = []
    for name, title in present.items():
        table = pd.read_csv(tables / f"ablation_{name}.csv")
        labels = [f"**{label}**" if configured else str(label)
                  for label, configured in zip(table.label, table.configured)]
        out += [f"EPS pseudo-mask mIoU (%) over {title}, `results/tables/ablation_{name}.csv`:", "",
                "| " + " | ".join(labels) + " |", "|" + "---|" * len(labels),
                "| " + " | ".join(_cell(v) for v in table.mIoU) + " |", ""]
        split |= set(table.images)
    out.append(f"Bold: the configured run. Scored on {', '.join(str(n) for n in sorted(split))} images of the "
               f"pseudo-mask split (`evaluation.pseudo_mask_split`). Generated by `python -m wsss_dev.readme` "
               f"from the CSVs of a `make ablations` on {_machine(tables)[0]}{_kept(tables)}.")
    return "\n".join(out)


def seeds_runs_block(bench: str | Path) -> str:
    """Markdown of `make seeds` run by run (docs/experiments.md keeps each grid this way)."""
    (cells,) = _read(Path(bench), ["seeds.csv"], "make seeds")
    title = f"Every run of the grid on {_grid_cpu(cells)} (seed / data seed / kernels; a bar missed is in bold):"
    return "\n".join([title, "",
                      *_cells_table(cells), "", "Generated by `python -m wsss_dev.readme` from `seeds.csv`."])


START, END = "<!-- results:start -->", "<!-- results:end -->"
BLOCKS = {"results": results_block, "seeds": seeds_block, "seeds_runs": seeds_runs_block,
          "ablations": ablations_block}


def update_readme(readme: str | Path, source: str | Path, block: str = "results") -> None:
    """Rewrite README's `<!-- {block}:start -->` ... `<!-- {block}:end -->` part from `source`."""
    readme = Path(readme)
    start, end = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        raise BadInputError(f"{readme}: no {start} ... {end} block to fill")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    with atomic_path(readme) as tmp:
        tmp.write_text(f"{head}{start}\n{BLOCKS[block](source)}\n{end}{tail}")


if __name__ == "__main__":
    # python -m wsss_dev.readme README.md docs/results/default [results]   (or: ... docs/results seeds)
    # python -m wsss_dev.readme keep results/tables docs/results/default [results|ablations]
    if sys.argv[1] == "keep":
        print(f"kept {', '.join(keep(sys.argv[2], sys.argv[3], *(sys.argv[4:5] or ['results'])))} in {sys.argv[3]}")
    else:
        update_readme(sys.argv[1], sys.argv[2], *(sys.argv[3:4] or ["results"]))
