"""The COCO rehearsal's raw-data worst moment (wsss_dev.bench.rehearse_report.raw_worst_moment), worked by
hand on one sample of a rehearsal 1,000 times smaller than the real archives."""

from __future__ import annotations

import pandas as pd
import pytest

from wsss.data.sources.coco14.prepare import ARCHIVES
from wsss_dev.bench.footprint import BLOCK
from wsss_dev.bench.rehearse_report import ARCHIVE_FILES, raw_worst_moment


def test_the_worst_moment_is_an_archive_beside_its_folder_in_the_download_chain():
    f = {"archive_bytes": {key: a.size / 1000 for key, a in ARCHIVES.items()}}
    files = {"train2014": 10, "val2014": 5, "annotations": 2}
    content = {"train2014": 13.0e6, "val2014": 6.5e6, "annotations": 0.5e6}  # bytes here, slack aside
    samples = pd.DataFrame([{**{f"raw_{k}_bytes": content[k] + files[k] * BLOCK / 2 for k in files},
                             **{f"raw_{k}_files": files[k] for k in files}}])
    # each folder at full size: its content x 1000, plus half a block for each of the real archive's files
    folder = {k: content[k] * 1000 + ARCHIVE_FILES.get(k, 1) * BLOCK / 2 for k in files}
    size = {k: a.size for k, a in ARCHIVES.items()}
    train_moment = size["train2014"] + folder["train2014"] + size["annotations"] + folder["annotations"]
    val_moment = folder["train2014"] + size["val2014"] + folder["val2014"] + folder["annotations"]
    worst, when = raw_worst_moment(samples, f)
    assert worst == pytest.approx(max(train_moment, val_moment), rel=1e-12)
    assert when.startswith("train2014.zip beside its folder") and train_moment > val_moment


def test_the_readme_quotes_the_rehearsal_csv():
    """README's MS-COCO scale figures are docs/results/coco_rehearsal.csv's, rounded as quoted."""
    from conftest import REPO

    figures = pd.read_csv(REPO / "docs/results/coco_rehearsal.csv").set_index("figure").projected
    readme = " ".join((REPO / "README.md").read_text().split())
    noisy = "intermediates at completion, noisy maps, keep_maps"
    assert (f"about {figures[f'{noisy} false']:.0f} GB of intermediates on the noisy-map bracket, "
            f"{figures[f'{noisy} true']:.0f} GB with every map kept; {figures['raw data, after extraction']:.1f} GB "
            f"of raw data after extraction, {figures['raw data, worst moment']:.1f} GB at the worst moment") in readme
