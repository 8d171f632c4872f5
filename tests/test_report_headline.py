"""The report opens on the result: the headline (wsss.stages.headline, also make run's terminal
summary), the paper-vs-run table (table_paper) or the claims (table_claims), and figures that name
methods and stages as the tables do, with the intervals of intervals.csv.

The unit tests read the CSVs of the make run kept in docs/results/default/; the integration test
reuses the session's tiny run. Every expected value is read from those CSVs, never typed.
"""

from __future__ import annotations

import os
import re
import shutil

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from conftest import REPO, TINY, snakemake
from wsss.core import results
from wsss.stages import headline
from wsss.stages.claims import BARS
from wsss.stages.figures import _grouped_bars, _metric_intervals
from wsss.stages.paper import claims_table
from wsss.stages.summary import summary

KEPT = REPO / "docs" / "results" / "default"


def _interval(intervals: pd.DataFrame, table: str, metric: str, stage: str, method: str) -> pd.Series:
    (row,) = intervals[(intervals.table == table) & (intervals.metric == metric) & (intervals.stage == stage)
                       & (intervals.method == method)].itertuples()
    return row


def test_headline_rows_are_the_tables_and_their_intervals():
    miou, intervals = pd.read_csv(KEPT / "miou.csv"), pd.read_csv(KEPT / "intervals.csv")
    (section,) = [s for s in headline.sections(KEPT) if s.title.startswith("mIoU")]
    assert section.path == f"{KEPT / 'miou.csv'}, {KEPT / 'intervals.csv'}"
    assert section.columns == ["stage", "EPS", "CAM (EPS − it [95 %])", "CAM × saliency (EPS − it [95 %])",
                               "ground truth (EPS − it [95 %])"]
    assert [r[0] for r in section.rows] == list(dict.fromkeys(miou.stage_name))
    for row, stage in zip(section.rows, dict.fromkeys(miou.stage)):
        value = miou[miou.stage == stage].set_index("method").mIoU
        assert row[1] == f"{value['eps']:.2f}"
        gap = _interval(intervals, "miou", "mIoU", stage, "eps - cam")
        assert row[2] == f"{value['cam']:.2f} ({gap.estimate:+.2f} [{gap.low:.2f}, {gap.high:.2f}])"
    # a pair without an interval (the kept run predates eps - cam_sal's): the difference alone
    cam_sal = miou[(miou.stage == "pseudo")].set_index("method").mIoU
    assert section.rows[0][3] == f"{cam_sal['cam_sal']:.2f} ({cam_sal['eps'] - cam_sal['cam_sal']:+.2f})"


def test_terminal_summary_and_report_page_print_the_same_sections(tmp_path):
    text = summary(KEPT)
    page = headline.write_html(KEPT, tmp_path / "headline.html")
    assert page == (tmp_path / "headline.html").read_text()
    for section in headline.sections(KEPT):
        assert "\n".join("  " + line for line in section.text_lines()) in text
        for row in section.rows:
            assert re.search("</td><td[^>]*>".join(re.escape(c.replace("&", "&amp;")) for c in row), page), row


def test_claims_of_the_kept_run_are_its_tables(tmp_path):
    tables = [str(KEPT / f"{t}.csv") for t in ("miou", "boundary", "confusion_ratio")]
    claims = claims_table(tables, str(KEPT / "intervals.csv"), tmp_path / "claims.csv").set_index("claim")
    miou, intervals = pd.read_csv(KEPT / "miou.csv"), pd.read_csv(KEPT / "intervals.csv")
    value = miou[miou.stage == "pseudo"].set_index("method").mIoU
    row = claims.loc["pseudo-mask (train) mIoU: EPS − CAM"]
    gap = _interval(intervals, "miou", "mIoU", "pseudo", "eps - cam")
    assert (row.value, row.low, row.high) == (round(value["eps"] - value["cam"], 4), gap.low, gap.high)
    ratio = pd.read_csv(KEPT / "confusion_ratio.csv").query("stage == 'pseudo' and coincident == 'water'")
    ratio = ratio.set_index("method").confusion_ratio
    assert claims.loc["pseudo-mask (train) water → boat confusion: EPS / CAM", "value"] == round(
        ratio["eps"] / ratio["cam"], 4)
    # every bar the seeds grid checks holds in the kept make run (README's seeds block: in every run)
    assert len(claims) == len(BARS) and set(claims.holds) == {"yes"}


def test_figure_bars_name_methods_and_stages_as_the_tables_with_their_intervals():
    miou, intervals = pd.read_csv(KEPT / "miou.csv"), pd.read_csv(KEPT / "intervals.csv")
    fig, ax = plt.subplots()
    _grouped_bars(ax, miou, "stage", "mIoU", "method", _metric_intervals(intervals, "miou", "mIoU"))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["CAM", "CAM × saliency", "EPS", "ground truth"]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(dict.fromkeys(miou.stage_name))
    # each error bar spans the method's interval of intervals.csv (the bar's value inside it)
    bars = [c for c in ax.containers if c.__class__.__name__ == "ErrorbarContainer"]
    eps = bars[2].lines[2][0].get_segments()
    for segment, stage in zip(eps, dict.fromkeys(miou.stage)):
        own = _interval(intervals, "miou", "mIoU", stage, "eps")
        value = miou[(miou.stage == stage) & (miou.method == "eps")].mIoU.item()
        assert (segment[0][1], segment[1][1]) == pytest.approx((min(own.low, value), max(own.high, value)))
    plt.close(fig)


PLUGIN = '''"""The synthetic source with the paper rows of tests/test_report_headline.py."""
import dataclasses

from wsss.data.sources import SOURCES, Published, register_source

register_source(dataclasses.replace(SOURCES["synthetic"], published=(
    Published("inside", "pseudo", "eps", {inside!r}),
    Published("outside", "deeplab_crf", "eps", {outside!r}),
    Published("on the edge", "pseudo_crf", "eps", {edge!r}),
    Published("another DeepLab", "deeplab_crf", "eps", 50.0, ("v1", "resnet101_caffe")),
    Published("not run", "pseudo", "released", 60.0),
)))
'''


@pytest.mark.slow
def test_paper_table_and_report_first_page_on_the_tiny_run(tiny_run, tmp_path):
    """With published numbers set for the synthetic source (a plugin), table_paper sets each beside
    the run's mIoU and interval; the report's first page shows the headline and that table."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, symlinks=True)
    tables = run / "results" / "tables"
    miou, intervals = pd.read_csv(tables / "miou.csv"), pd.read_csv(tables / "intervals.csv")
    pseudo = miou[(miou.stage == "pseudo") & (miou.method == "eps")].mIoU.item()
    deeplab = _interval(intervals, "miou", "mIoU", "deeplab_crf", "eps")
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    edge = _interval(intervals, "miou", "mIoU", "pseudo_crf", "eps").low  # an interval's end is inside it
    (plugins / "published_synthetic.py").write_text(PLUGIN.format(inside=pseudo, outside=deeplab.high + 1, edge=edge))
    os.environ["WSSS_PLUGINS"], path = "published_synthetic", os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugins), path]))
    try:
        snakemake(results.path("table", table="paper"), results.path("headline"), "--cores", "2", "--configfile",
                  str(TINY), workdir=run)
        snakemake("--configfile", str(TINY), "--report", str(run / "report.html"), workdir=run)
    finally:
        del os.environ["WSSS_PLUGINS"]
        os.environ["PYTHONPATH"] = path
    paper = pd.read_csv(tables / "paper.csv")
    paper[["inside", "note"]] = paper[["inside", "note"]].fillna("")
    deeplab_run = miou[(miou.stage == "deeplab_crf") & (miou.method == "eps")].mIoU.item()
    pseudo_interval = _interval(intervals, "miou", "mIoU", "pseudo", "eps")
    assert paper.row.tolist() == ["inside", "outside", "on the edge", "another DeepLab", "not run"]
    assert paper.iloc[0][["published", "this_run", "low", "high", "inside"]].tolist() == [
        pseudo, pseudo, pseudo_interval.low, pseudo_interval.high, "yes"]
    assert paper.iloc[1][["published", "this_run", "low", "high", "inside"]].tolist() == [
        deeplab.high + 1, deeplab_run, deeplab.low, deeplab.high, "no"]
    assert paper.iloc[2][["published", "low", "inside"]].tolist() == [edge, edge, "yes"]
    assert paper.iloc[3:].this_run.isna().all() and paper.iloc[3:].inside.tolist() == ["", ""]
    assert paper.note.tolist() == ["", "", "", "another DeepLab: run with deeplab.variant v1, deeplab.backbone "
                                   "resnet101_caffe", "released at pseudo is not in this run's results/tables/miou.csv"]

    html = (run / "report.html").read_text(errors="replace")
    cell = "</td><td[^>]*>"
    # the first page: the headline before the workflow's description, its numbers those of the CSVs
    assert html.index("eps-headline") < html.index("eps-workflow reproduces")
    value = miou[miou.stage == "pseudo"].set_index("method").mIoU
    gap = _interval(intervals, "miou", "mIoU", "pseudo", "eps - cam")
    assert re.search(re.escape("pseudo-mask (train)") + cell + f"{value['eps']:.2f}" + cell + re.escape(
        f"{value['cam']:.2f} ({gap.estimate:+.2f} [{gap.low:.2f}, {gap.high:.2f}])"), html)
    assert re.search("outside" + cell + f"{deeplab.high + 1:g}" + cell + f"{deeplab_run:.4g}" + cell
                     + re.escape(f"[{deeplab.low:.4g}, {deeplab.high:.4g}]") + cell + "no<", html)
