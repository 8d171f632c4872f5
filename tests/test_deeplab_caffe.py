"""deeplab.backbone resnet101_caffe: the Caffe ResNet-101 of the COCO-pretrained DeepLab-v2 and
deeplab-pytorch's converted state dict (key layout written out here by its naming rules, not
imported), its input transform, strict loading, and an independent functional forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wsss.core.images import normalize
from wsss.core.io import BadInputError
from wsss.models.caffe_resnet import CAFFE_MEAN_BGR, CaffeInput, caffe_key_map
from wsss.models.deeplab import DeepLabModelConfig, DeepLabV2, FrozenBatchNorm2d, load_init_weights

torch.set_num_threads(2)

# deeplab-pytorch libs/models/__init__.py DeepLabV2_ResNet101_MSC: n_blocks, rates; stages are
# layer2..layer5 after the stem layer1 (libs/models/deeplabv2.py), channels 256/512/1024/2048.
N_BLOCKS = (3, 4, 23, 3)
STAGES = tuple(zip((2, 3, 4, 5), N_BLOCKS, (256, 512, 1024, 2048), (1, 2, 1, 1), (1, 1, 2, 4)))
CFG = dict(backbone="resnet101_caffe", aspp_rates=[6, 12, 18, 24], multi_scale=False, freeze_bn=True)


def deeplab_pytorch_state_dict(num_classes: int | None, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors named as deeplab-pytorch's convert.py names them (no `base.` prefix):
    `_ConvBnReLU` = `.conv.weight` + `.bn.{weight,bias,running_mean,running_var,num_batches_tracked}`;
    bottleneck branches reduce/conv3x3/increase, shortcut in block1 only; `aspp.c{i}` with bias."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv_bn(name: str, cin: int, cout: int, k: int, gamma: float = 1.0) -> None:
        sd[f"{name}.conv.weight"] = torch.randn(cout, cin, k, k, generator=g) * (1.0 / (cin * k * k)) ** 0.5
        sd[f"{name}.bn.weight"] = gamma * (0.5 + torch.rand(cout, generator=g))
        sd[f"{name}.bn.bias"] = 0.1 * torch.randn(cout, generator=g)
        sd[f"{name}.bn.running_mean"] = 0.1 * torch.randn(cout, generator=g)
        sd[f"{name}.bn.running_var"] = 0.5 + torch.rand(cout, generator=g)
        sd[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)

    conv_bn("layer1.conv1", 3, 64, 7)
    cin = 64
    for layer, n, cout, _, _ in STAGES:
        for b in range(1, n + 1):
            src, mid = (cin if b == 1 else cout), cout // 4
            conv_bn(f"layer{layer}.block{b}.reduce", src, mid, 1)
            conv_bn(f"layer{layer}.block{b}.conv3x3", mid, mid, 3)
            conv_bn(f"layer{layer}.block{b}.increase", mid, cout, 1, gamma=0.2)  # keeps 33 blocks tame
            if b == 1:
                conv_bn(f"layer{layer}.block{b}.shortcut", src, cout, 1)
        cin = cout
    if num_classes is not None:
        for i in range(4):
            sd[f"aspp.c{i}.weight"] = 0.01 * torch.randn(num_classes, 2048, 3, 3, generator=g)
            sd[f"aspp.c{i}.bias"] = 0.1 * torch.randn(num_classes, generator=g)
    return sd


def reference_forward(sd: dict[str, torch.Tensor], bgr: torch.Tensor) -> torch.Tensor:
    """deeplab-pytorch's DeepLabV2 written out functionally on its own keys: stem 7x7/2 + BN + ReLU +
    max pool 3/2 pad 1 ceil_mode; stride in `reduce`; 3x3 padding = dilation; BN eps 1e-5."""
    def cbr(x, name, stride=1, pad=0, dil=1, relu=True):
        x = F.conv2d(x, sd[f"{name}.conv.weight"], None, stride, pad, dil)
        x = F.batch_norm(x, sd[f"{name}.bn.running_mean"], sd[f"{name}.bn.running_var"],
                         sd[f"{name}.bn.weight"], sd[f"{name}.bn.bias"], False, 0.0, 1e-5)
        return F.relu(x) if relu else x

    x = F.max_pool2d(cbr(bgr, "layer1.conv1", 2, 3), 3, 2, 1, ceil_mode=True)
    for layer, n, _, stride, dil in STAGES:
        for b in range(1, n + 1):
            p, s = f"layer{layer}.block{b}", (stride if b == 1 else 1)
            h = cbr(cbr(cbr(x, f"{p}.reduce", s), f"{p}.conv3x3", 1, dil, dil), f"{p}.increase", relu=False)
            x = F.relu(h + (cbr(x, f"{p}.shortcut", s, relu=False) if b == 1 else x))
    return sum(F.conv2d(x, sd[f"aspp.c{i}.weight"], sd[f"aspp.c{i}.bias"], 1, r, r)
               for i, r in enumerate(CFG["aspp_rates"]))


@pytest.fixture(scope="module")
def caffe_sd():
    return deeplab_pytorch_state_dict(num_classes=21)


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 256, (65, 65, 3), dtype=np.uint8)


def test_input_adapter_gives_bgr_minus_caffe_mean():
    pixel = np.array([[[255, 0, 128]]], dtype=np.uint8)  # R, G, B
    out = CaffeInput()(normalize(pixel)[None])[0, :, 0, 0]
    assert CAFFE_MEAN_BGR == (104.008, 116.669, 122.675)
    expected = torch.tensor([128 - 104.008, 0 - 116.669, 255 - 122.675])  # B, G, R
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-4)
    assert not CaffeInput().state_dict()  # constants, not weights


def test_architecture_is_caffe_resnet101_at_output_stride_8():
    model = DeepLabV2(21, DeepLabModelConfig(**CFG)).eval()
    bb = model.backbone
    assert bb.maxpool.ceil_mode and bb.out_channels == 2048 and [len(bb.layer1), len(bb.layer2),
                                                                len(bb.layer3), len(bb.layer4)] == list(N_BLOCKS)
    assert bb.layer2[0].conv1.stride == (2, 2) and bb.layer2[0].conv2.stride == (1, 1)  # stride in the reduce
    assert bb.layer2[0].downsample[0].stride == (2, 2) and bb.layer1[0].downsample is not None
    assert bb.layer3[5].conv2.dilation == (2, 2) and bb.layer4[2].conv2.dilation == (4, 4)
    assert all(m.eps == 1e-5 for m in bb.modules() if isinstance(m, FrozenBatchNorm2d))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        feats = bb(torch.randn(1, 3, 65, 65))
        assert feats.shape == (1, 2048, 9, 9)  # ceil(65 / 8), as Caffe's rounding up gives
        # 64 px: 32 after the stem conv, 17 after the ceil_mode pool (16 with floor), 9 at the end.
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 21, 9, 9)


def test_key_map_covers_every_key_strictly(caffe_sd):
    model = DeepLabV2(21, DeepLabModelConfig(**CFG))
    mapped, dropped = caffe_key_map({f"base.{k}": v for k, v in caffe_sd.items()})
    own = {k for k in model.state_dict()}
    assert set(mapped) == own  # nothing missing, nothing unexpected
    assert len(dropped) == sum(k.endswith("num_batches_tracked") for k in caffe_sd)
    assert mapped["backbone.layer3.22.bn2.running_var"] is caffe_sd["layer4.block23.conv3x3.bn.running_var"]
    assert mapped["backbone.layer2.0.downsample.1.running_var"] is caffe_sd["layer3.block1.shortcut.bn.running_var"]
    assert mapped["backbone.layer4.2.conv3.weight"] is caffe_sd["layer5.block3.increase.conv.weight"]
    assert mapped["aspp.branches.3.bias"] is caffe_sd["aspp.c3.bias"]


def test_loads_and_matches_an_independent_forward_then_save_reload(tmp_path, caffe_sd, image):
    torch.save({"state_dict": {f"base.{k}": v for k, v in caffe_sd.items()}}, tmp_path / "msc.pth")
    model = DeepLabV2(21, DeepLabModelConfig(**CFG)).eval()
    counts = load_init_weights(model, tmp_path / "msc.pth")
    n_tensors = sum(not k.endswith("num_batches_tracked") for k in caffe_sd)
    assert counts == {"loaded": n_tensors, "skipped": 0}
    x = normalize(image)[None]  # what the datasets feed
    bgr = torch.from_numpy(image[..., ::-1].astype(np.float32) - np.array(CAFFE_MEAN_BGR, np.float32))
    with torch.no_grad():
        out = model(x)
        ref = reference_forward(caffe_sd, bgr.permute(2, 0, 1)[None].contiguous())
    assert out.shape == (1, 21, 9, 9)
    torch.testing.assert_close(out, ref, rtol=1e-3, atol=1e-3 * ref.abs().max().item())
    torch.save(model.state_dict(), tmp_path / "own.pth")  # the project's key names
    again = DeepLabV2(21, DeepLabModelConfig(**CFG)).eval()
    load_init_weights(again, tmp_path / "own.pth")
    with torch.no_grad():
        assert torch.equal(again(x), out)


def test_other_class_count_skips_aspp_and_coco_init_file_loads(tmp_path, caffe_sd):
    sd182 = {**{k: v for k, v in caffe_sd.items() if not k.startswith("aspp.")},
             **{k: v for k, v in deeplab_pytorch_state_dict(182, seed=1).items() if k.startswith("aspp.")}}
    torch.save({f"base.{k}": v for k, v in sd182.items()}, tmp_path / "cocostuff.pth")
    model = DeepLabV2(21, DeepLabModelConfig(**CFG))
    aspp_before = {k: v.clone() for k, v in model.aspp.state_dict().items()}
    counts = load_init_weights(model, tmp_path / "cocostuff.pth")
    assert counts["skipped"] == 8  # 4 branches x (weight, bias) of 182 classes
    assert all(torch.equal(v, aspp_before[k]) for k, v in model.aspp.state_dict().items())
    torch.testing.assert_close(model.backbone.conv1.weight, caffe_sd["layer1.conv1.conv.weight"])
    # deeplabv1_resnet101-coco.pth: no prefix, no ASPP, a 1x1 `fc` of 91 COCO classes (dropped).
    coco = {**{k: v for k, v in caffe_sd.items() if not k.startswith("aspp.")},
            "fc.weight": torch.zeros(91, 2048, 1, 1), "fc.bias": torch.zeros(91)}
    torch.save(coco, tmp_path / "coco.pth")
    counts = load_init_weights(DeepLabV2(21, DeepLabModelConfig(**CFG)), tmp_path / "coco.pth")
    assert counts["skipped"] == 2 and counts["loaded"] == sum(
        not k.endswith("num_batches_tracked") and not k.startswith("aspp.") for k in caffe_sd)


def test_incomplete_or_foreign_files_are_refused(tmp_path, caffe_sd):
    model = DeepLabV2(21, DeepLabModelConfig(**CFG))
    broken = {k: v for k, v in caffe_sd.items() if k != "layer4.block23.conv3x3.bn.running_var"}
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(BadInputError, match="missing backbone.layer3.22.bn2.running_var"):
        load_init_weights(model, tmp_path / "broken.pth")
    torch.save({**caffe_sd, "layer5.block4.reduce.conv.weight": torch.zeros(1)}, tmp_path / "extra.pth")
    with pytest.raises(BadInputError, match="unexpected backbone.layer4.3.conv1.weight"):
        load_init_weights(model, tmp_path / "extra.pth")
    torch.save(caffe_sd, tmp_path / "caffe.pth")
    with pytest.raises(BadInputError, match="resnet101_caffe"):
        load_init_weights(DeepLabV2(21, DeepLabModelConfig(backbone="small", width=8, aspp_rates=[1],
                                                           freeze_bn=False)), tmp_path / "caffe.pth")
