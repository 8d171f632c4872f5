"""The paper's setting, end to end on the CPU: config/voc12.yaml on the embedded benchmark with only
sizes, iteration counts and the data changed (tests/config/paper_smoke.yaml). It runs the code paths
real users run: PFAN on a full-width VGG-16 from a weights file, ResNet-38d from an MXNet .params
file with the official recipe (frozen BN and blocks, momentum 5e-4, bicubic resizing, hue jitter),
the official EPS pseudo-mask rule, DeepLab-v2 ResNet-101 with MSC and frozen BN from an init file,
AMP falling back on the CPU. It catches crashes, not numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, snakemake
from test_mxnet_params import mxnet_name
from wsss.data.weights import digests
from wsss.schema import load_config

pytestmark = pytest.mark.slow

SMOKE = REPO / "tests" / "config" / "paper_smoke.yaml"


def write_weight_files(workdir, config) -> None:
    """Random weights in each file format the paper setting reads, at the configured paths."""
    from wsss.models.deeplab import DeepLabModelConfig, DeepLabV2
    from wsss.models.mxnet_params import write_params
    from wsss.models.pfan import PFAN, PFANConfig
    from wsss.models.resnet38d import ResNet38d

    torch.manual_seed(0)
    vgg = workdir / config["saliency"]["model"]["backbone_weights"]
    vgg.parent.mkdir(parents=True, exist_ok=True)
    assert vgg.parent == workdir / config["weights"]["dir"]  # the paper setting reads the weights stage's files
    pfan = PFAN(PFANConfig(width=1.0, batch_norm=False, kernel=9, backbone_weights=None))
    torch.save(pfan.features.state_dict(), vgg)  # torchvision's VGG-16 `features` keys
    # ResNet-38d under ademxapp's MXNet names (the naming-scheme oracle of test_mxnet_params).
    params = {mxnet_name(k): v.numpy() for k, v in ResNet38d().state_dict().items() if mxnet_name(k)}
    write_params(workdir / config["classifier"]["pretrained"], params)
    deeplab = DeepLabV2(len(config["dataset"]["classes"]) + 1, DeepLabModelConfig(backbone="resnet101"))
    torch.save(deeplab.state_dict(), workdir / config["deeplab"]["init_weights"])


def test_paper_setting_runs_end_to_end(tmp_path):
    config = load_config(REPO / "config" / "voc12.yaml", SMOKE)
    assert config["classifier"]["backbone"] == "resnet38d" and config["pseudo_masks"]["eps_rule"] == "official"
    write_weight_files(tmp_path, config)
    # The weights stage verifies the placed files against weights.files: give it their checksums.
    folder = tmp_path / config["weights"]["dir"]
    files = {p.name: {"url": f"http://127.0.0.1:9/{p.name}", "sha256": digests(p)["sha256"]}
             for p in folder.iterdir() if p.is_file()}
    (tmp_path / "placed.yaml").write_text(yaml.safe_dump({"weights": {"files": files}}))
    snakemake("--cores", "2", "--resources", "gpu=0", "--configfile", str(REPO / "config" / "voc12.yaml"),
              str(SMOKE), str(tmp_path / "placed.yaml"), workdir=tmp_path, timeout=1500)
    assert len(list((folder / ".verified").iterdir())) == 3  # every weights file was verified
    miou = pd.read_csv(tmp_path / "results/tables/miou.csv")
    assert {"cam", "cam_sal", "eps", "gt"} <= set(miou.method) and np.isfinite(miou.mIoU).all()
    log = (tmp_path / "logs/train_classifier/eps.log").read_text()
    assert "resnet38d" in log
