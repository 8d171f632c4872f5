"""Figures (PNG, matplotlib): qualitative grids, bar charts of the three tables, training-loss curves.

Label maps are drawn with the VOC palette (255 = the palette's cream colour, as in VOC's own
PNGs), saliency in grey. Bar charts name methods and stages as the tables print them (the method's
label, the table's stage_name) and carry each bar's 95 % bootstrap interval over images from
intervals.csv as an error bar. Every path comes from the rule; figures are written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from wsss.core.io import (  # noqa: E402
    BadInputError,
    atomic_path,
    label_palette,
    read_gray_png,
    read_id_list,
    read_image,
    read_label_png,
)
from wsss.stages.headline import label as method_label  # noqa: E402
from wsss.stages.tables import STAGES  # noqa: E402

_PALETTE = np.array(label_palette(), dtype=np.uint8).reshape(256, 3)


def colorize(label: np.ndarray) -> np.ndarray:
    return _PALETTE[label]


def _save(fig, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def pick_ids(ids_file: str, requested: list[str], count: int) -> list[str]:
    """The configured ids if given (each must be in the split), else the first `count` of the split."""
    available = read_id_list(ids_file)
    if not requested:
        return available[:count]
    unknown = [i for i in requested if i not in set(available)]
    if unknown:
        raise BadInputError(f"evaluation figure id '{unknown[0]}' is not in {ids_file}; fix the config's figure ids")
    return list(requested)


def _saliency_or_blank(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """The saliency map, or mid-grey where there is none (released maps may lack the val ids)."""
    return read_gray_png(path) if path.is_file() else np.full(shape, 0.5, np.float32)


def figure_qualitative(ids: list[str], images_dir: str, gt_dir: str, saliency_dir: str,
                     columns: list[tuple[str, str]], out_png: str, title: str = "") -> None:
    """One row per id: image, ground truth, saliency, then one label-map column per (title, folder)."""
    heads = ["image", "ground truth", "saliency"] + [t for t, _ in columns]
    fig, axes = plt.subplots(len(ids), len(heads), figsize=(1.6 * len(heads), 1.6 * len(ids)), squeeze=False)
    for r, i in enumerate(ids):
        image = read_image(Path(images_dir) / f"{i}.jpg")
        panels = [image, colorize(read_label_png(Path(gt_dir) / f"{i}.png")),
                  _saliency_or_blank(Path(saliency_dir) / f"{i}.png", image.shape[:2])]
        panels += [colorize(read_label_png(Path(d) / f"{i}.png")) for _, d in columns]
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(heads[c], fontsize=8)
        axes[r, 0].set_ylabel(i, fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    _save(fig, out_png)


def _grouped_bars(ax, table: pd.DataFrame, group: str, value: str, series: str,
                  intervals: pd.DataFrame | None = None) -> None:
    """One bar per method (its label) in each stage group (the table's stage_name); with `intervals`
    (intervals.csv rows of this value's metric), each bar's 95 % interval as an error bar."""
    groups = list(dict.fromkeys(table[group]))
    names = list(dict.fromkeys(table[series]))
    titles = dict(zip(table[group], table["stage_name"])) if "stage_name" in table else {}
    width = 0.8 / max(1, len(names))
    for k, name in enumerate(names):
        sub = table[table[series] == name].set_index(group)
        vals = [float(sub.loc[g, value]) if g in sub.index and pd.notna(sub.loc[g, value]) else np.nan for g in groups]
        x = np.arange(len(groups)) + (k - (len(names) - 1) / 2) * width
        ax.bar(x, vals, width, label=method_label(name))
        tops = np.asarray(vals, dtype=float)
        if intervals is not None:
            own = intervals[intervals.method == name].set_index("stage")
            low = np.array([own.low.get(g, np.nan) for g in groups], dtype=float)
            high = np.array([own.high.get(g, np.nan) for g in groups], dtype=float)
            # an interval from resamples may sit beside a rounded table value: never a negative arm
            arms = np.nan_to_num(np.clip(np.vstack([tops - low, high - tops]), 0, None))
            ax.errorbar(x, vals, yerr=arms, fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
            tops = tops + arms[1]
        for xi, top, v in zip(x, tops, vals):  # the value above its bar and error bar
            if not np.isnan(v):
                ax.annotate(f"{v:.3g}", (xi, top), xytext=(0, 1.5), textcoords="offset points", ha="center",
                            va="bottom", fontsize=6)
    ax.set_xticks(np.arange(len(groups)), [titles.get(g, STAGES.get(g, g)) for g in groups], fontsize=7, rotation=10)
    ax.set_ylim(top=ax.get_ylim()[1] * 1.08)  # room for the value labels above the error bars
    # below the stage names, never over a bar
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(names), frameon=False)


def _metric_intervals(intervals: pd.DataFrame | None, table: str, metric: str) -> pd.DataFrame | None:
    """intervals.csv's rows of one table's metric, per method (not its differences)."""
    if intervals is None:
        return None
    return intervals[(intervals.table == table) & (intervals.metric == metric) & ~intervals.method.str.contains(" - ")]


_NOTE = "error bars: 95 % bootstrap interval over images (intervals.csv)"


def _miou_bars(table: pd.DataFrame, out_png: str, intervals: pd.DataFrame | None = None) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    _grouped_bars(ax, table, "stage", "mIoU", "method", _metric_intervals(intervals, "miou", "mIoU"))
    ax.set_ylabel("mIoU (%)")
    ax.set_title("mIoU by stage and pseudo-mask source" + (f"\n{_NOTE}" if intervals is not None else ""),
                 fontsize=9)
    _save(fig, out_png)


def _boundary_bars(table: pd.DataFrame, out_png: str, intervals: pd.DataFrame | None = None) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, metric in zip(axes, ["precision", "recall", "F1"]):
        # intervals.csv holds the F1's (the table's headline number), not precision's or recall's
        shown = _metric_intervals(intervals, "boundary", "F1") if metric == "F1" else None
        _grouped_bars(ax, table, "stage", metric, "method", shown)
        ax.set_title(f"boundary {metric} (%)" + (f"\n{_NOTE}" if shown is not None else ""), fontsize=9)
    fig.tight_layout()
    _save(fig, out_png)


def _confusion_bars(table: pd.DataFrame, out_png: str, intervals: pd.DataFrame | None = None) -> None:
    table = table.assign(pair=table["target"] + "–" + table["coincident"])
    pairs = list(dict.fromkeys(table["pair"]))
    n = max(1, len(pairs))
    fig, axes = plt.subplots(1, 2 * n, figsize=(4.2 * 2 * n, 3.6), squeeze=False)
    for k, pair in enumerate(pairs):
        sub = table[table["pair"] == pair]
        target, coincident = sub["target"].iloc[0], sub["coincident"].iloc[0]
        shown = _metric_intervals(intervals, "confusion_ratio", f"confusion_{coincident}_{target}")
        _grouped_bars(axes[0, 2 * k], sub, "stage", "confusion_ratio", "method", shown)
        axes[0, 2 * k].set_title(f"confusion ratio {coincident} → {target}\n(lower is better"
                                 + ("; 95 % intervals)" if shown is not None else ")"), fontsize=9)
        _grouped_bars(axes[0, 2 * k + 1], sub, "stage", "target_IoU", "method")
        axes[0, 2 * k + 1].set_title(f"{target} IoU (%)\n", fontsize=9)
    fig.tight_layout()
    _save(fig, out_png)


TABLE_FIGURES = {"miou": _miou_bars, "boundary": _boundary_bars, "confusion_ratio": _confusion_bars}


def figure_table(kind: str, table_csv: str, out_png: str, intervals_csv: str | None = None) -> None:
    """Bar chart of one table (miou, boundary or confusion_ratio): grouped by stage, one bar per method,
    with error bars from `intervals_csv` (results/tables/intervals.csv) when given."""
    if kind not in TABLE_FIGURES:
        raise ValueError(f"unknown table kind {kind!r}; one of {sorted(TABLE_FIGURES)}")
    try:
        table = pd.read_csv(table_csv)
        intervals = pd.read_csv(intervals_csv) if intervals_csv else None
    except FileNotFoundError as err:
        raise BadInputError(f"{err.filename}: table missing; re-run its table rule") from None
    TABLE_FIGURES[kind](table, out_png, intervals)


def figure_losses(loss_csvs: list[str], labels: list[str], out_png: str, smooth: int = 10) -> None:
    """One panel per training run: every logged scalar but `lr` against the step (moving average)."""
    if len(loss_csvs) != len(labels):
        raise ValueError("one label per loss CSV")
    ncols = min(3, max(1, len(loss_csvs)))
    nrows = -(-max(1, len(loss_csvs)) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.8 * ncols, 2.8 * nrows), squeeze=False)
    for ax in axes.flat[len(loss_csvs):]:
        ax.axis("off")
    for ax, path, label in zip(axes.flat, loss_csvs, labels):
        try:
            df = pd.read_csv(path)
        except FileNotFoundError:
            raise BadInputError(f"{path}: loss CSV missing; re-run the training rule ({label})") from None
        if "step" not in df.columns:
            raise BadInputError(f"{path}: no 'step' column; not a training-loop loss CSV")
        # Loss terms only: other logged scalars (e.g. EPS's per-class selection rates) have other units.
        cols = [c for c in df.columns if "loss" in c] or [c for c in df.columns if c not in ("step", "lr")]
        values = df[cols].apply(pd.to_numeric, errors="coerce")
        for col in cols:
            ax.plot(df["step"], values[col].rolling(smooth, min_periods=1).mean(), label=col, linewidth=1)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        # Log scale only where it helps: positive losses spanning more than a decade.
        lo, hi = values.min().min(), values.max().max()
        if lo > 0 and hi / lo > 10:
            ax.set_yscale("log")
        ax.legend(fontsize=6)
    fig.tight_layout()
    _save(fig, out_png)


def figure_ablation(table_csv: str, out_png: str) -> None:
    """EPS pseudo-mask mIoU over one ablation's points (results/tables/ablation_<name>.csv): a line
    over a numeric grid (τ, λ), bars for named sources (saliency); the configured point is marked."""
    from matplotlib.patches import Patch

    from wsss.stages.ablation import ABLATIONS

    try:
        table = pd.read_csv(table_csv)
    except FileNotFoundError:
        raise BadInputError(f"{table_csv}: table missing; re-run table_ablation") from None
    if table.empty or table["ablation"].nunique() != 1 or table["ablation"].iloc[0] not in ABLATIONS:
        raise BadInputError(f"{table_csv}: not an ablation table (one `ablation` name of {sorted(ABLATIONS)})")
    spec = ABLATIONS[table["ablation"].iloc[0]]
    configured = table["configured"].astype(str).str.lower() == "true"
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    if spec.plot == "line":
        x = table["value"].astype(float)
        ax.plot(x, table["mIoU"], marker="o", linewidth=1.2, label="EPS pseudo-masks")
        ax.plot(x[configured], table["mIoU"][configured], "s", color="tab:red", label="configured run")
        for xi, yi in zip(x, table["mIoU"]):
            ax.annotate(f"{yi:.3g}", (xi, yi), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=6)
        ax.set_xticks(x)
        ax.legend(fontsize=7)
    else:
        colours = ["tab:red" if c else "tab:blue" for c in configured]
        bars = ax.bar(np.arange(len(table)), table["mIoU"], color=colours)
        ax.bar_label(bars, fmt="%.3g", fontsize=6)
        ax.set_xticks(np.arange(len(table)), table["label"], fontsize=7, rotation=10)
        ax.legend(handles=[Patch(color="tab:red", label="configured run")], fontsize=7)
    ax.set_xlabel(spec.label, fontsize=8)
    ax.set_ylabel("pseudo-mask mIoU (%)")
    ax.set_title(f"EPS ablation: {spec.name} ({int(table['images'].iloc[0])} images)", fontsize=9)
    _save(fig, out_png)
