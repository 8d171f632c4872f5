"""make seeds: the grid's summary (the runs themselves are make seeds' own, too slow for make test)."""

from __future__ import annotations

import pandas as pd
import pytest

from wsss.core import results
from wsss.stages.claims import summarize
from wsss_dev.readme import update_readme
from wsss_dev.seeds import cell_name


def test_summary_gives_mean_std_and_the_minimum_margin():
    rows = []
    for seed, (cam, eps) in enumerate([(50.0, 60.0), (52.0, 59.0), (48.0, 70.0)]):
        cell = {"seed": seed, "data_seed": 0, "kernel": "native"}
        rows += [{**cell, "method": "cam", "stage": "pseudo", "metric": "mIoU", "value": cam},
                 {**cell, "method": "eps", "stage": "pseudo", "metric": "mIoU", "value": eps}]
    summary = summarize(pd.DataFrame(rows))
    eps = summary[(summary.kind == "value") & (summary.method == "eps")].iloc[0]
    assert eps["mean"] == pytest.approx(63.0) and eps["count"] == 3
    margin = summary[summary.kind == "difference"].iloc[0]
    assert margin["min"] == pytest.approx(7.0) and margin["max"] == pytest.approx(22.0)
    assert not margin["holds"]  # 7 points is under the 8-point bar in one cell
    assert cell_name(1, 3, "default") == "seed1_data3_default"


def _grid(cam_ratio: float, eps_ratio: float) -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        cell = {"seed": seed, "data_seed": 0, "kernel": "native", "cpu": "Test CPU, AVX2"}
        values = {("mIoU", "pseudo"): {"cam": 50.0, "eps": 60.0 + seed},
                  ("mIoU", "deeplab"): {"cam": 50.0, "eps": 68.0, "gt": 80.0},
                  ("F1", "pseudo"): {"cam": 40.0, "eps": 45.0},
                  ("confusion_water_boat", "pseudo"): {"cam": cam_ratio, "eps": eps_ratio}}
        rows += [{**cell, "method": m, "stage": stage, "metric": metric, "value": v}
                 for (metric, stage), per in values.items() for m, v in per.items()]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("eps_ratio, holds", [(0.2, True), (0.4, False)])
def test_ratio_claims_check_every_cell(eps_ratio, holds):
    summary = summarize(_grid(0.9, eps_ratio)).set_index(["metric", "stage", "method"])
    boat = summary.loc[("confusion_water_boat", "pseudo", "eps / cam")]
    assert boat["worst"] == pytest.approx(eps_ratio / 0.9) and bool(boat["holds"]) is holds
    gt = summary.loc[("mIoU", "deeplab", "eps / gt")]
    assert gt["worst"] == pytest.approx(0.85) and gt["holds"]  # 68 / 80 = 0.85: the bar itself passes


def test_readme_seeds_block_is_generated_from_the_csvs(tmp_path):
    table = _grid(0.9, 0.4)
    table.to_csv(tmp_path / "seeds.csv", index=False)
    summarize(table).to_csv(tmp_path / "seeds_summary.csv", index=False)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- seeds:start -->\nstale\n<!-- seeds:end -->\noutro\n")
    update_readme(readme, tmp_path, block="seeds")
    text = readme.read_text()
    assert "stale" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert "Test CPU, AVX2" in text and "60.5 ± 0.71" in text  # EPS pseudo-mask mIoU over the 2 seeds
    assert "| water → boat confusion (train): eps / cam | ≤ 0.333 | 0.444 |" in text and "**no**" in text
    # Every run has its own row, the missed bar in bold: EPS - CAM pseudo is 10 / 11, water -> boat 0.444.
    assert "| 0 / 0 / native | 10 | 18 | 5 | **0.444** | 0.85 |" in text
    assert "| 1 / 0 / native | 11 | 18 | 5 | **0.444** | 0.85 |" in text


def test_report_table_names_the_grid_and_the_cpu(tmp_path):
    from wsss.stages.claims import table_seeds

    table = _grid(0.9, 0.2)
    table.to_csv(tmp_path / "seeds.csv", index=False)
    summarize(table).to_csv(tmp_path / "seeds_summary.csv", index=False)
    out = table_seeds(tmp_path / "seeds.csv", tmp_path / "seeds_summary.csv", tmp_path / "t.csv", tmp_path / "r.csv")
    assert set(out.runs) == {2} and set(out.cpu) == {"Test CPU, AVX2"}
    assert pd.read_csv(tmp_path / "t.csv").holds.dropna().astype(bool).all()
    runs = pd.read_csv(tmp_path / "r.csv")  # one row per run, each claim's value and verdict there
    assert list(runs.seed) == [0, 1] and set(runs.cpu) == {"Test CPU, AVX2"}
    assert list(runs["mIoU pseudo: eps - cam"]) == [10.0, 11.0] and runs["mIoU pseudo: eps - cam holds"].all()


def test_the_dag_adds_the_seeds_table_once_make_seeds_has_run(tmp_path):
    from conftest import TINY, snakemake

    assert "table_seeds" not in snakemake("-n", "--configfile", str(TINY), workdir=tmp_path).stdout
    (tmp_path / "results" / "bench").mkdir(parents=True)
    table = _grid(0.9, 0.2)
    table.to_csv(tmp_path / results.path("seeds_cells"), index=False)
    summarize(table).to_csv(tmp_path / results.path("seeds_summary"), index=False)
    assert "table_seeds" in snakemake("-n", "--configfile", str(TINY), workdir=tmp_path).stdout


def test_collect_only_summarises_the_finished_cells(tmp_path):
    from wsss_dev.seeds import main

    tables = tmp_path / "runs" / cell_name(0, 0, "native") / "results" / "tables"
    tables.mkdir(parents=True)
    (tmp_path / "runs" / cell_name(1, 0, "native")).mkdir()  # started, never finished
    methods = ["cam", "eps"]
    pd.DataFrame({"method": methods, "stage": "pseudo", "mIoU": [50.0, 61.0]}).to_csv(tables / "miou.csv")
    pd.DataFrame({"method": methods, "stage": "pseudo", "F1": [40.0, 45.0]}).to_csv(tables / "boundary.csv")
    pd.DataFrame({"method": methods, "stage": "pseudo", "coincident": "water", "target": "boat",
                  "confusion_ratio": [0.9, 0.1]}).to_csv(tables / "confusion_ratio.csv")
    readme = tmp_path / "README.md"
    readme.write_text("<!-- seeds:start -->\n<!-- seeds:end -->\n")
    assert main(["--out", str(tmp_path), "--collect-only", "--seeds", "0", "1", "--data-seeds", "0",
                 "--kernels", "native", "--readme", str(readme)]) == 0
    cells = pd.read_csv(tmp_path / "seeds.csv")
    assert set(cells.seed) == {0} and set(cells.planned) == {2}
    summary = pd.read_csv(tmp_path / "seeds_summary.csv").set_index(["metric", "stage", "method"])
    assert summary.loc[("mIoU", "pseudo", "eps - cam"), "worst"] == pytest.approx(11.0)
    assert "1 runs (of 2 planned)" in readme.read_text()


@pytest.mark.parametrize("doc, block", [("README.md", "seeds"), ("docs/experiments.md", "seeds_runs")])
def test_the_kept_grid_is_what_the_docs_quote(doc, block):
    """README's seeds block and docs/experiments.md's per-run table are generated from the grid kept
    in docs/results/, not typed: regenerating them from those CSVs changes nothing."""
    from conftest import REPO
    from wsss_dev.readme import BLOCKS

    kept = REPO / "docs" / "results"
    text = (REPO / doc).read_text()
    quoted = text.split(f"<!-- {block}:start -->\n", 1)[1].split(f"\n<!-- {block}:end -->", 1)[0]
    assert quoted == BLOCKS[block](kept)
    summary = pd.read_csv(kept / "seeds_summary.csv")
    assert len(pd.read_csv(kept / "seeds.csv").drop_duplicates(["seed", "data_seed", "kernel"])) == 12
    assert summary.holds.dropna().astype(bool).all()  # the README says every claim holds in every run


def test_claims_worst_and_mean_std_on_a_grid_whose_cells_differ():
    """Four cells (seeds x data seeds x kernels), every claim's value different in each: the summary's
    mean, std (n - 1), min, max, worst cell and verdict against numpy on the per-cell values."""
    import numpy as np

    from wsss.stages.claims import cell_margins

    cells = [(0, 0, "native"), (1, 0, "native"), (0, 1, "generic"), (1, 1, "generic")]
    values = {("mIoU", "pseudo"): {"cam": [50.0, 47.5, 52.0, 49.0], "eps": [61.0, 56.0, 60.5, 57.5]},
              ("mIoU", "deeplab"): {"cam": [55.0, 54.0, 53.0, 56.5], "eps": [66.0, 63.5, 62.0, 64.0],
                                    "gt": [75.0, 76.0, 74.0, 77.0]},
              ("F1", "pseudo"): {"cam": [40.0, 41.0, 39.0, 42.0], "eps": [43.0, 41.0, 45.0, 44.5]},
              ("confusion_water_boat", "pseudo"): {"cam": [0.9, 0.6, 0.75, 1.2], "eps": [0.2, 0.15, 0.24, 0.3]}}
    rows = [{"seed": s, "data_seed": d, "kernel": k, "method": m, "stage": stage, "metric": metric, "value": v[n]}
            for (metric, stage), per in values.items() for m, v in per.items() for n, (s, d, k) in enumerate(cells)]
    summary = summarize(pd.DataFrame(rows[::-1])).set_index(["metric", "stage", "method"])  # any row order
    v = {key: {m: np.array(x) for m, x in per.items()} for key, per in values.items()}
    for (metric, stage), per in v.items():
        for m, x in per.items():
            got = summary.loc[(metric, stage, m)]
            assert got[["mean", "std", "min", "max", "count"]].tolist() == pytest.approx(
                [x.mean(), x.std(ddof=1), x.min(), x.max(), 4], rel=1e-12)
    # (claim, per-cell values, worst, holds): a difference's worst cell is its smallest, an at-most
    # ratio's its largest, an at-least ratio's its smallest
    expected = [
        (("mIoU", "pseudo", "eps - cam"), v["mIoU", "pseudo"]["eps"] - v["mIoU", "pseudo"]["cam"], 8.5, True),
        (("mIoU", "deeplab", "eps - cam"), v["mIoU", "deeplab"]["eps"] - v["mIoU", "deeplab"]["cam"], 7.5, False),
        (("F1", "pseudo", "eps - cam"), v["F1", "pseudo"]["eps"] - v["F1", "pseudo"]["cam"], 0.0, False),  # strict
        (("confusion_water_boat", "pseudo", "eps / cam"),
         v["confusion_water_boat", "pseudo"]["eps"] / v["confusion_water_boat", "pseudo"]["cam"], 0.32, True),
        (("mIoU", "deeplab", "eps / gt"), v["mIoU", "deeplab"]["eps"] / v["mIoU", "deeplab"]["gt"], 64 / 77, False),
    ]
    for key, x, worst, holds in expected:
        got = summary.loc[key]
        assert got[["mean", "std", "min", "max", "count", "worst"]].tolist() == pytest.approx(
            [x.mean(), x.std(ddof=1), x.min(), x.max(), 4, worst], rel=1e-12), key
        assert bool(got["holds"]) is holds, key
    # values in the order the rows name them, then the claims, numbered 0..n - 1
    first_seen = list(dict.fromkeys((r["metric"], r["stage"], r["method"]) for r in rows[::-1]))
    plain = summarize(pd.DataFrame(rows[::-1]))
    assert list(zip(plain.metric, plain.stage, plain.method))[:len(first_seen)] == first_seen
    assert list(plain.index) == list(range(len(first_seen) + len(expected)))
    without_kernel = cell_margins(pd.DataFrame(rows).drop(columns="kernel"))  # a grid of two cell keys
    assert list(without_kernel.columns[:2]) == ["seed", "data_seed"] and len(without_kernel) == 4
    runs = cell_margins(pd.DataFrame(rows)).set_index(["seed", "data_seed", "kernel"])
    for (key, x, _, _), bar in zip(expected, [8.0, 8.0, 0.0, 1 / 3, 0.85]):
        column = f"{key[0]} {key[1]}: {key[2]}"
        assert [runs.loc[c, column] for c in cells] == pytest.approx(x.tolist(), rel=1e-12)
        at_most, strict = key[2] == "eps / cam" and key[0].startswith("confusion"), key[0] == "F1"
        assert [bool(runs.loc[c, f"{column} holds"]) for c in cells] == [
            bool(y <= bar if at_most else (y > bar if strict else y >= bar)) for y in x], key


def test_report_tables_are_the_summary_and_the_runs_to_four_decimals(tmp_path):
    from wsss.stages.claims import cell_margins, table_seeds

    table = _grid(0.9, 0.2)
    table["value"] += table.seed / 3  # values with more than four decimals
    table.to_csv(tmp_path / "seeds.csv", index=False)
    summary = summarize(table)
    summary.to_csv(tmp_path / "seeds_summary.csv", index=False)
    table_seeds(tmp_path / "seeds.csv", tmp_path / "seeds_summary.csv", tmp_path / "t.csv", tmp_path / "r.csv")
    written = pd.read_csv(tmp_path / "t.csv")
    expected = pd.read_csv(tmp_path / "seeds_summary.csv").round(4).assign(runs=2, cpu="Test CPU, AVX2")
    pd.testing.assert_frame_equal(written, expected)
    runs = pd.read_csv(tmp_path / "r.csv")
    pd.testing.assert_frame_equal(runs, cell_margins(table).assign(cpu="Test CPU, AVX2").round(4), check_dtype=False)
    no_cpu = table.drop(columns="cpu")
    no_cpu.to_csv(tmp_path / "seeds.csv", index=False)
    assert set(table_seeds(tmp_path / "seeds.csv", tmp_path / "seeds_summary.csv", tmp_path / "t.csv").cpu) == {""}


def test_claims_bars_at_their_edge_and_claims_without_their_methods():
    from wsss.stages.claims import BARS

    boat, gt = BARS[3], BARS[4]
    assert boat.holds(pd.Series([0.25 / 0.75])) and not boat.holds(pd.Series([0.34]))  # at most 1/3: the bar holds
    assert gt.holds(pd.Series([0.85])) and not gt.holds(pd.Series([0.849]))
    rows = _grid(0.9, 0.2)
    summary = summarize(rows[rows.method != "gt"])  # no DeepLab on the ground truth: that claim is left out
    assert "eps / gt" not in set(summary.method) and "eps / cam" in set(summary.method)
