"""make seeds: the grid's summary (the runs themselves are make seeds' own, too slow for make test)."""

from __future__ import annotations

import pandas as pd
import pytest

from wsss.seeds import cell_name, summarize


def test_summary_gives_mean_std_and_the_minimum_margin():
    rows = []
    for seed, (cam, eps) in enumerate([(50.0, 60.0), (52.0, 59.0), (48.0, 70.0)]):
        cell = {"seed": seed, "data_seed": 0, "kernel": "native"}
        rows += [{**cell, "method": "cam", "stage": "pseudo", "metric": "mIoU", "value": cam},
                 {**cell, "method": "eps", "stage": "pseudo", "metric": "mIoU", "value": eps}]
    summary = summarize(pd.DataFrame(rows))
    eps = summary[(summary.kind == "value") & (summary.method == "eps")].iloc[0]
    assert eps["mean"] == pytest.approx(63.0) and eps["count"] == 3
    margin = summary[summary.kind == "margin"].iloc[0]
    assert margin["min"] == pytest.approx(7.0) and margin["max"] == pytest.approx(22.0)
    assert not margin["holds"]  # 7 points is under the 8-point bar in one cell
    assert cell_name(1, 3, "default") == "seed1_data3_default"
