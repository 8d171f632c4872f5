"""ResNet-38d: the official key layout, geometry, freezing, and official checkpoints as model files.

The full network has 105M parameters, so the tests build it few times and use 64-px inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsss.core.io import BadInputError
from wsss.methods import CLASSIFIERS
from wsss.models.backbones import BACKBONES, build_backbone
from wsss.models.classifier import build_classifier, load_classifier
from wsss.models.official import (
    classifier_of_head,
    import_official_checkpoint,
    official_to_project,
    project_to_official,
)
from wsss.models.resnet38d import ResNet38d, ResNet38dConfig

CLASSES = ["a", "b", "c"]


def official_layout() -> dict[str, tuple[int, ...]]:
    """Key → shape of the official resnet38d.Net, written out from its definition (EPS network/resnet38d.py)."""
    shapes = {"conv1a.weight": (64, 3, 3, 3)}

    def bn(prefix, c):
        shapes.update({f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
                       f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()})

    def basic(name, cin, mid, cout, project):
        bn(f"{name}.bn_branch2a", cin)
        shapes[f"{name}.conv_branch2a.weight"] = (mid, cin, 3, 3)
        bn(f"{name}.bn_branch2b1", mid)
        shapes[f"{name}.conv_branch2b1.weight"] = (cout, mid, 3, 3)
        if project:
            shapes[f"{name}.conv_branch1.weight"] = (cout, cin, 1, 1)

    def bottleneck(name, cin, cout):
        bn(f"{name}.bn_branch2a", cin)
        shapes[f"{name}.conv_branch2a.weight"] = (cout // 4, cin, 1, 1)
        bn(f"{name}.bn_branch2b1", cout // 4)
        shapes[f"{name}.conv_branch2b1.weight"] = (cout // 2, cout // 4, 3, 3)
        bn(f"{name}.bn_branch2b2", cout // 2)
        shapes[f"{name}.conv_branch2b2.weight"] = (cout, cout // 2, 1, 1)
        shapes[f"{name}.conv_branch1.weight"] = (cout, cin, 1, 1)

    basic("b2", 64, 128, 128, True)
    basic("b2_1", 128, 128, 128, False)
    basic("b2_2", 128, 128, 128, False)
    basic("b3", 128, 256, 256, True)
    basic("b3_1", 256, 256, 256, False)
    basic("b3_2", 256, 256, 256, False)
    basic("b4", 256, 512, 512, True)
    for i in range(1, 6):
        basic(f"b4_{i}", 512, 512, 512, False)
    basic("b5", 512, 512, 1024, True)
    basic("b5_1", 1024, 512, 1024, False)
    basic("b5_2", 1024, 512, 1024, False)
    bottleneck("b6", 1024, 2048)
    bottleneck("b7", 2048, 4096)
    bn("bn7", 4096)
    return shapes


def random_official_state(num_maps: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict in the official resnet38_eps/cls layout (fc8.weight included)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_layout().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith(".weight") and len(shape) == 1:  # BN gamma
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            state[key] = torch.randn(shape, generator=g) / fan_in ** 0.5
    state["fc8.weight"] = torch.randn((num_maps, 4096, 1, 1), generator=g) * 0.01
    return state


@pytest.fixture(scope="module")
def backbone() -> ResNet38d:
    torch.manual_seed(0)
    return ResNet38d()


def test_key_layout_matches_the_official_net():
    with torch.device("meta"):
        ours = {k: tuple(v.shape) for k, v in ResNet38d().state_dict().items()}
    assert ours == official_layout()
    assert "resnet38d" in BACKBONES


def test_output_stride_8_and_4096_channels(backbone):
    assert backbone.out_channels == 4096 and backbone.output_stride == 8
    backbone.eval()
    with torch.no_grad():
        out = backbone(torch.randn(1, 3, 64, 48))
    assert out.shape == (1, 4096, 8, 6)
    assert (out >= 0).all()  # the output is ReLU(bn7(x))


def test_frozen_bn_and_frozen_layers(backbone):
    backbone.train()
    bns = [m for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 37 and not any(m.training for m in bns)
    assert not any(p.requires_grad for m in bns for p in m.parameters())
    # a caller cannot unfreeze by toggling modes
    backbone.eval().train(True)
    assert not any(m.training for m in bns)
    convs = {n: p for n, p in backbone.named_parameters() if "conv" in n}
    early = ("conv1a", "b2", "b2_1", "b2_2")
    assert {n for n, p in convs.items() if not p.requires_grad} == {n for n in convs if n.split(".")[0] in early}
    mean_before = backbone.b3.bn_branch2a.running_mean.clone()
    backbone.zero_grad(set_to_none=True)
    backbone(torch.randn(1, 3, 32, 32)).mean().backward()
    assert backbone.conv1a.weight.grad is None and backbone.b2_2.conv_branch2b1.weight.grad is None
    assert backbone.b3.conv_branch2a.weight.grad is not None
    assert backbone.b7.bn_branch2a.weight.grad is None
    assert torch.equal(backbone.b3.bn_branch2a.running_mean, mean_before)  # BN statistics untouched
    # dropout modules stay live in train mode (official b6 0.3, b7 0.5)
    assert backbone.b6.dropout_2b1.p == 0.3 and backbone.b7.dropout_2b2.p == 0.5 and backbone.b7.training
    backbone.zero_grad(set_to_none=True)
    backbone.eval()


def test_unfrozen_options():
    with torch.device("meta"):
        net = ResNet38d(ResNet38dConfig(freeze_bn=False, frozen_blocks=(), dropout_out=0.5)).train()
    assert all(p.requires_grad for p in net.parameters())
    assert net.bn7.training and net.dropout_out.p == 0.5
    with pytest.raises(ValueError, match="b9"):
        ResNet38d(ResNet38dConfig(frozen_blocks=("b9",)))


def test_classifier_of_head():
    assert classifier_of_head(21, 20) == "eps" and classifier_of_head(20, 20) == "cam"
    with pytest.raises(ValueError):
        classifier_of_head(19, 20)


def test_official_checkpoint_loads_strictly_and_reloads_identically(tmp_path):
    official = random_official_state(len(CLASSES) + 1)
    state, method = official_to_project(official, len(CLASSES))
    assert method == "eps" and set(state) == {"head.weight"} | {f"backbone.{k}" for k in official if k != "fc8.weight"}
    model = build_classifier(CLASSIFIERS["eps"], len(CLASSES), "resnet38d")
    model.load_state_dict(state, strict=True)
    assert project_to_official(model.state_dict()).keys() == official.keys()
    assert all(torch.equal(v, official[k]) for k, v in project_to_official(model.state_dict()).items())
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    del model

    ckpt = tmp_path / "checkpoint_cls.pth"
    torch.save(official, ckpt)
    out = tmp_path / "models" / "eps.pt"
    cfg = import_official_checkpoint(ckpt, len(CLASSES), CLASSES, out)
    assert cfg["classifier"] == "eps" and cfg["model"]["backbone"] == "resnet38d"
    loaded, loaded_cfg = load_classifier(out)
    assert loaded_cfg["class_names"] == CLASSES and not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)
    del loaded

    # a project model file is accepted as it is
    again = tmp_path / "copy.pt"
    assert import_official_checkpoint(out, len(CLASSES), CLASSES, again)["classifier"] == "eps"
    assert again.read_bytes() == out.read_bytes()
    with pytest.raises(BadInputError, match="classes"):
        import_official_checkpoint(out, 3, ["x", "y", "z"], tmp_path / "bad.pt")


def test_official_cam_checkpoint_and_bad_files(tmp_path):
    official = random_official_state(len(CLASSES), seed=1)
    # DataParallel-saved, and without BN counters (old torch)
    official = {f"module.{k}": v for k, v in official.items() if not k.endswith("num_batches_tracked")}
    ckpt = tmp_path / "cls.pth"
    torch.save(official, ckpt)
    del official
    assert import_official_checkpoint(ckpt, len(CLASSES), CLASSES, tmp_path / "cam.pt")["classifier"] == "cam"
    with pytest.raises(BadInputError, match="classes"):
        import_official_checkpoint(ckpt, 7, [str(i) for i in range(7)], tmp_path / "x.pt")

    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(BadInputError, match="junk.pth"):
        import_official_checkpoint(junk, 3, CLASSES, tmp_path / "x.pt")
    other = tmp_path / "other.pth"
    torch.save({"layer.weight": torch.zeros(2)}, other)
    with pytest.raises(BadInputError, match="other.pth.*fc8"):
        import_official_checkpoint(other, 3, CLASSES, tmp_path / "x.pt")
    torch.save({"fc8.weight": torch.zeros(4, 4096, 1, 1), "conv1a.weight": torch.zeros(64, 3, 3, 3)}, other)
    with pytest.raises(BadInputError, match="other.pth"):
        import_official_checkpoint(other, 3, CLASSES, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_pretrained_pth_in_resnet38d_layout(tmp_path):
    official = random_official_state(1, seed=2)
    del official["fc8.weight"]
    pth = tmp_path / "res38d.pth"
    torch.save(official, pth)
    net = build_backbone("resnet38d", str(pth))
    assert torch.equal(net.b7.conv_branch2b2.weight, official["b7.conv_branch2b2.weight"])
    del net
    official["extra.weight"] = torch.zeros(1)
    torch.save(official, pth)
    with pytest.raises(BadInputError, match="res38d.pth.*extra.weight"):
        build_backbone("resnet38d", str(pth))
    with pytest.raises(BadInputError, match="missing"):
        build_backbone("resnet38d", str(tmp_path / "absent.pth"))
