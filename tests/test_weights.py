"""The weights stage: one rule per file, checksums, gdown behind one seam, and the plan of voc12."""

from __future__ import annotations

import hashlib

import pytest
import yaml
from httpserver import ArchiveServer

from conftest import REPO, snakemake
from wsss.core.io import BadInputError
from wsss.data.weights import download_weights, verify_weights


@pytest.fixture
def served(tmp_path):
    blob = tmp_path / "served" / "resnet101-abcdef12.pth"
    blob.parent.mkdir()
    blob.write_bytes(b"weights" * 1000)
    with ArchiveServer({blob.name: blob}) as srv:
        yield srv, blob, hashlib.sha256(blob.read_bytes()).hexdigest()


@pytest.mark.parametrize("via", ["http", "gdown"])
def test_download_checks_the_checksum(served, tmp_path, via):
    srv, blob, sha = served
    out = tmp_path / "w" / blob.name
    download_weights(f"{srv.url}/{blob.name}", out, sha256=sha[:8], via=via)  # gdown fetches from 127.0.0.1
    assert out.read_bytes() == blob.read_bytes()
    bad = tmp_path / "w" / "bad.pth"
    with pytest.raises(BadInputError) as err:
        download_weights(f"{srv.url}/{blob.name}", bad, sha256="0" * 8, via=via)
    assert str(bad) in str(err.value) and "nothing was kept" in str(err.value)
    assert not bad.exists() and not any(p.name.startswith(".bad") for p in bad.parent.iterdir())


def test_a_placed_file_is_verified_once(tmp_path):
    placed = tmp_path / "vgg16-397923af.pth"
    placed.write_bytes(b"not the real vgg")
    with pytest.raises(BadInputError, match="does not match"):
        verify_weights(placed, tmp_path / "rec.json", sha256="397923af")
    assert not (tmp_path / "rec.json").exists()
    sha = hashlib.sha256(placed.read_bytes()).hexdigest()
    assert verify_weights(placed, tmp_path / "rec.json", sha256=sha)["sha256"] == sha


def test_voc12_plans_the_weight_downloads_unless_placed(tmp_path):
    plan = snakemake("-n", "--configfile", str(REPO / "config/voc12.yaml"), workdir=tmp_path).stdout
    wanted = sorted({line.split("output: ")[1].strip() for block in plan.split("rule download_weights:")[1:]
                     for line in block.splitlines()[:3] if "output: " in line})
    # DeepLab's COCO init, ResNet-38 ImageNet, the authors' saliency maps (saliency.source released)
    assert [w.rsplit("/", 1)[1] for w in wanted] == ["deeplabv1_resnet101-coco.pth", "eps_pfan_saliency_voc12.zip",
                                                     "ilsvrc-cls_rna-a1_cls1000_ep-0001.params"]
    for path in wanted:  # placed by hand, as on an offline cluster
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"placed by hand")
    plan = snakemake("-n", "--configfile", str(REPO / "config/voc12.yaml"), workdir=tmp_path).stdout
    assert "rule download_weights:" not in plan and plan.count("rule verify_weights:") == 3


def test_a_wrong_weights_file_stops_before_training(tmp_path):
    """A hand-placed file with the wrong checksum: verify_weights fails naming it; nothing is recorded."""
    cfg = yaml.safe_load((REPO / "tests/config/tiny.yaml").read_text())
    cfg["weights"] = {"files": {"init.pth": {"url": "http://127.0.0.1:9/init.pth", "sha256": "0" * 8}}}
    cfg["deeplab"]["init_weights"] = "resources/weights/init.pth"
    (tmp_path / "resources/weights").mkdir(parents=True)
    (tmp_path / "resources/weights/init.pth").write_bytes(b"wrong")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake("resources/weights/.verified/init.pth.json", "--cores", "1", "--configfile",
                     str(tmp_path / "c.yaml"), workdir=tmp_path, check=False)
    log = (tmp_path / "logs/verify_weights/init.pth.log").read_text()
    assert proc.returncode != 0 and "resources/weights/init.pth" in log and "does not match" in log
    assert not (tmp_path / "resources/weights/.verified/init.pth.json").exists()
