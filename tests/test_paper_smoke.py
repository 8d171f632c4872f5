"""The paper's setting, end to end on the CPU: config/voc12.yaml on the embedded benchmark with only
sizes, iteration counts and the data changed (tests/config/paper_smoke.yaml). It runs the code paths
real users run: the weights stage verifying placed files, the authors' released saliency maps from
an archive, ResNet-38d from an MXNet .params file with the official recipe (frozen BN and blocks,
momentum 5e-4, bicubic resizing, hue jitter),
the official EPS pseudo-mask rule, DeepLab-v2 ResNet-101 with MSC and frozen BN from deeplab-pytorch's
COCO init, then the paper's other DeepLab rows (config/voc12-deeplab-v1.yaml: DeepLab-v1 ResNet-101 from
the same init; config/voc12-deeplab-vgg16.yaml: DeepLab-LargeFOV VGG-16 from a .caffemodel), AMP falling
back on the CPU. It catches crashes, not numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from table_reference import check_tables
from test_mxnet_params import mxnet_name

from conftest import REPO, snakemake
from wsss.config.load import load_config
from wsss.core import results
from wsss.core.io import read_id_list, write_gray_png
from wsss.data.weights import digests

pytestmark = pytest.mark.slow

SMOKE = REPO / "tests" / "config" / "paper_smoke.yaml"


def write_weight_files(workdir, config, vgg16_init=None) -> None:
    """Random weights in each file format the paper setting reads, at the configured paths."""
    from test_deeplab_variants import RefDeepLab, RefMSC, randomise
    from test_vgg16_largefov import caffe_state_dict, caffemodel_current

    from wsss.models.deeplab import DeepLab, DeepLabModelConfig
    from wsss.models.mxnet_params import write_params
    from wsss.models.resnet38d import ResNet38d

    torch.manual_seed(0)
    folder = workdir / config["weights"]["dir"]
    folder.mkdir(parents=True, exist_ok=True)
    assert (workdir / config["classifier"]["pretrained"]).parent == folder  # read from the weights stage
    # ResNet-38d under ademxapp's MXNet names (the naming-scheme oracle of test_mxnet_params).
    params = {mxnet_name(k): v.numpy() for k, v in ResNet38d().state_dict().items() if mxnet_name(k)}
    write_params(workdir / config["classifier"]["pretrained"], params)
    if config["deeplab"]["backbone"] == "resnet101_caffe":
        # deeplab-pytorch's COCO init: an MSC-wrapped DeepLab-v1 of COCO's 91 classes (its fc does not fit VOC)
        init = RefMSC(randomise(RefDeepLab(91, "v1"), seed=1)).state_dict()
    else:  # a DeepLab state dict of this project on torchvision's ResNet layout
        init = DeepLab(len(config["dataset"]["classes"]) + 1, DeepLabModelConfig(backbone="resnet101")).state_dict()
    torch.save(init, workdir / config["deeplab"]["init_weights"])
    if vgg16_init is not None:  # DeepLab's VGG-16 ImageNet init, a .caffemodel read without Caffe
        params = {k: v.numpy() for k, v in caffe_state_dict(num_classes=None).items()}
        (workdir / vgg16_init).write_bytes(caffemodel_current(params))


def write_released_maps(archive, root) -> None:
    import zipfile

    from wsss.core.io import read_id_list, read_label_png

    prepared = root / "prepared"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in read_id_list(prepared / "lists/train_aug.txt"):
            mask = read_label_png(prepared / f"SegmentationClassAug/{i}.png")
            png = root / f"{i}.sal.png"
            write_gray_png(png, ((mask > 0) & (mask < 255)).astype(np.float32))
            zf.write(png, f"VOC2012/SALImages/{i}.png")
            png.unlink()


def test_paper_setting_runs_end_to_end(tmp_path):
    config = load_config(REPO / "config" / "voc12.yaml", SMOKE)
    assert config["classifier"]["backbone"] == "resnet38d" and config["pseudo_masks"]["eps_rule"] == "official"
    assert config["deeplab"]["backbone"] == "resnet101_caffe" and config["deeplab"]["variant"] == "v2"
    vgg16 = load_config(REPO / "config" / "voc12.yaml", REPO / "config" / "voc12-deeplab-vgg16.yaml")["deeplab"]
    write_weight_files(tmp_path, config, vgg16["init_weights"])
    # The authors' PFAN maps (saliency.source released): an archive with one more folder level, as
    # theirs; its maps are the ground-truth foreground, for the train_aug ids only (no val maps).
    smoke = ("--configfile", str(REPO / "config" / "voc12.yaml"), str(SMOKE))
    snakemake(config["dataset"]["root"] + "/prepared", "--cores", "2", *smoke, workdir=tmp_path)
    write_released_maps(tmp_path / config["saliency"]["released_archive"], tmp_path / config["dataset"]["root"])
    # The weights stage verifies the placed files against weights.files: give it their checksums.
    folder = tmp_path / config["weights"]["dir"]
    files = {p.name: {"url": f"http://127.0.0.1:9/{p.name}", "sha256": digests(p)["sha256"]}
             for p in folder.iterdir() if p.is_file()}
    (tmp_path / "placed.yaml").write_text(yaml.safe_dump({"weights": {"files": files}}))
    snakemake("--cores", "2", "--resources", "gpu=0", *smoke, str(tmp_path / "placed.yaml"), workdir=tmp_path,
              timeout=1500)
    assert len(list((folder / ".verified").iterdir())) == 3  # every file the run reads was verified
    assert not (tmp_path / "results/saliency/pfan").exists()  # the released maps, no PFAN
    miou = pd.read_csv(tmp_path / results.path("table", table="miou"))
    assert {"cam", "cam_sal", "eps", "gt"} <= set(miou.method)
    # every table's numbers, recomputed from the run's PNGs (before the overlays below replace DeepLab's)
    assert check_tables(tmp_path, config)["miou.csv"] == len(miou)
    log = (tmp_path / "logs/train_classifier/eps.log").read_text()
    assert "resnet38d" in log
    # DeepLab reads the raw masks, so the CRF refines only the split its tables score.
    lists = tmp_path / config["dataset"]["root"] / "prepared" / "lists"
    refined = {p.stem for p in (tmp_path / results.path("pseudo_masks_crf", method="eps")).glob("*.png")}
    assert refined == set(read_id_list(lists / f"{config['evaluation']['pseudo_mask_split']}.txt"))
    # The paper's other DeepLab rows on the same masks: only DeepLab and its evaluation rerun.
    for overlay in ("voc12-deeplab-v1.yaml", "voc12-deeplab-vgg16.yaml"):
        configs = (*smoke, str(REPO / "config" / overlay), str(tmp_path / "placed.yaml"))
        target = results.path("eval_miou", variant="", stage="deeplab", method="eps")
        plan = snakemake("-n", target, "--configfile", *configs[1:], workdir=tmp_path).stdout
        assert "train_segmentation" in plan and "train_classifier" not in plan, overlay
        snakemake(target, "--cores", "2", "--resources", "gpu=0", "--configfile",
                  *configs[1:], workdir=tmp_path, timeout=900)
        model = torch.load(tmp_path / results.path("deeplab_model", method="eps"), weights_only=False)
        built = model["config"]["model"]
        assert built["variant"] == "v1" and not any(k.startswith("aspp.") for k in model["model"]), overlay
        assert built["backbone"] == ("vgg16" if "vgg16" in overlay else "resnet101_caffe")
    assert len(list((folder / ".verified").iterdir())) == 4  # the VGG-16 init too, once
