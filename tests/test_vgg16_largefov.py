"""deeplab.backbone vgg16: DeepLab-LargeFOV's VGG-16 against an independent functional forward written
from the released prototxt, its Caffe-named state dict and .caffemodel files (encoded here by a
minimal protobuf writer, in both Caffe formats), strict loading and the LargeFOV lr groups."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import wsss.stages.train_segmentation as seg
from wsss.core.images import normalize
from wsss.core.io import BadInputError
from wsss.models.caffe_resnet import CAFFE_MEAN_BGR
from wsss.models.caffemodel import read_caffemodel
from wsss.models.deeplab import DeepLab, DeepLabModelConfig, load_init_weights
from wsss.models.vgg16_largefov import VGG16LargeFOV

torch.set_num_threads(2)

CFG = dict(backbone="vgg16", variant="v1", multi_scale=False)
# The prototxt's stages: (stage, convs, channels, pool stride, conv dilation).
PROTOTXT = ((1, 2, 64, 2, 1), (2, 2, 128, 2, 1), (3, 3, 256, 2, 1), (4, 3, 512, 1, 1), (5, 3, 512, 1, 2))


def caffe_state_dict(num_classes: int | None = 21, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under DeepLab-LargeFOV's Caffe layer names, conv-shaped."""
    g = torch.Generator().manual_seed(seed)
    sd, cin = {}, 3

    def conv(name, cin, cout, k):
        sd[f"{name}.weight"] = torch.randn(cout, cin, k, k, generator=g) * (2.0 / (cin * k * k)) ** 0.5
        sd[f"{name}.bias"] = 0.05 * torch.randn(cout, generator=g)

    for stage, n, cout, _, _ in PROTOTXT:
        for i in range(1, n + 1):
            conv(f"conv{stage}_{i}", cin, cout, 3)
            cin = cout
    conv("fc6", 512, 1024, 3)
    conv("fc7", 1024, 1024, 1)
    if num_classes:
        conv("fc8_voc12", 1024, num_classes, 1)
    return sd


def reference_forward(p: dict[str, torch.Tensor], bgr: torch.Tensor) -> torch.Tensor:
    """The prototxt, layer by layer: 3x3 convs (pad = dilation), max pool 3 pad 1 rounding up (Caffe),
    pool5a average 3/1/1, fc6 3x3 dilation 12, fc7 1x1, fc8; dropout is the identity at test time."""
    x = bgr
    for stage, n, _, stride, dil in PROTOTXT:
        for i in range(1, n + 1):
            x = F.relu(F.conv2d(x, p[f"conv{stage}_{i}.weight"], p[f"conv{stage}_{i}.bias"], padding=dil, dilation=dil))
        x = F.max_pool2d(x, 3, stride, 1, ceil_mode=True)
    x = F.avg_pool2d(x, 3, 1, 1)
    x = F.relu(F.conv2d(x, p["fc6.weight"], p["fc6.bias"], padding=12, dilation=12))
    x = F.relu(F.conv2d(x, p["fc7.weight"], p["fc7.bias"]))
    return F.conv2d(x, p["fc8_voc12.weight"], p["fc8_voc12.bias"])


# --- a minimal protobuf writer for .caffemodel files (caffe.proto field numbers) ---------------------------------
def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:  # wire type 2: length-delimited
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def int_field(number: int, value: int) -> bytes:  # wire type 0
    return varint(number << 3) + varint(value)


def blob_legacy(a: np.ndarray) -> bytes:
    """BlobProto with the deprecated num/channels/height/width (1-padded in front) and packed floats."""
    dims = (1,) * (4 - a.ndim) + a.shape
    return b"".join(int_field(n, d) for n, d in zip((1, 2, 3, 4), dims)) + field(5, a.astype("<f4").tobytes())


def blob_current(a: np.ndarray, unpacked: bool = False, double: bool = False) -> bytes:
    shape = field(7, field(1, b"".join(varint(d) for d in a.shape)))
    if double:
        return shape + field(8, a.astype("<f8").tobytes())
    if unpacked:  # each float its own field (wire type 5)
        return shape + b"".join(varint(5 << 3 | 5) + np.float32(v).tobytes() for v in a.ravel())
    return shape + field(5, a.astype("<f4").tobytes())


def caffemodel_v1(params: dict[str, np.ndarray]) -> bytes:
    """The pre-2015 format (NetParameter.layers, V1LayerParameter): blobs in legacy 4-D shapes, fc
    layers as InnerProduct (1, 1, out, in*k*k), biases (1, 1, 1, out); blob-less layers in between."""
    names = list(dict.fromkeys(k.rsplit(".", 1)[0] for k in params))
    body = field(1, b"vgg128_noup")
    body += field(2, field(4, b"data") + int_field(5, 12) + field(3, b"data"))  # a data layer: no blobs
    for name in names:
        w, b = params[f"{name}.weight"], params[f"{name}.bias"]
        if name.startswith("fc"):
            w = w.reshape(1, 1, w.shape[0], -1)
        layer = field(2, b"bottom") + field(3, name.encode()) + field(4, name.encode()) + int_field(5, 4)
        layer += field(6, blob_legacy(w)) + field(6, blob_legacy(b.reshape(1, 1, 1, -1)))
        body += field(2, layer) + field(2, field(4, f"relu_{name}".encode()) + int_field(5, 18))
    return body


def caffemodel_current(params: dict[str, np.ndarray]) -> bytes:
    """The current format (NetParameter.layer = 100, LayerParameter): N-D BlobShape; one bias unpacked,
    one in double precision, as protobuf allows."""
    names = list(dict.fromkeys(k.rsplit(".", 1)[0] for k in params))
    body = b""
    for name in names:
        w, b = params[f"{name}.weight"], params[f"{name}.bias"]
        blobs = field(7, blob_current(w, double=name == "conv2_1"))
        blobs += field(7, blob_current(b, unpacked=name == "conv1_1"))
        body += field(100, field(1, name.encode()) + field(2, b"Convolution") + blobs)
        body += field(100, field(1, f"relu_{name}".encode()) + field(2, b"ReLU"))
    return body


@pytest.fixture(scope="module")
def caffe_sd():
    return caffe_state_dict()


@pytest.fixture(scope="module")
def image():
    pixels = np.random.default_rng(0).integers(0, 256, (50, 50, 3), dtype=np.uint8)
    bgr = torch.from_numpy(pixels[..., ::-1].astype(np.float32) - np.array(CAFFE_MEAN_BGR, np.float32))
    return normalize(pixels)[None], bgr.permute(2, 0, 1)[None].contiguous()


def test_layout_is_largefov_at_output_stride_8():
    bb = VGG16LargeFOV()
    assert [bb.conv5_1.dilation, bb.conv4_3.dilation, bb.fc6.dilation, bb.fc7.kernel_size] == [(2, 2), (1, 1),
                                                                                              (12, 12), (1, 1)]
    assert bb.fc6.weight.shape == (1024, 512, 3, 3) and bb.fc7.weight.shape == (1024, 1024, 1, 1)
    assert [p.stride for p in bb.pools] == [2, 2, 2, 1, 1] and all(p.ceil_mode for p in bb.pools)
    assert [m.p for m in bb.modules() if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]
    assert len(bb.state_dict()) == 30 and bb.out_channels == 1024
    with torch.device("meta"):  # shapes only
        model = DeepLab(21, DeepLabModelConfig(**CFG))
        # 321 -> 41 as the prototxt's comment has it; 50 -> 8 only when pooling rounds up as Caffe does.
        assert [tuple(model(torch.empty(1, 3, s, s)).shape[-2:]) for s in (321, 513, 50)] == [(41, 41), (65, 65),
                                                                                               (8, 8)]


def test_published_layout_loads_strictly_and_matches_the_prototxt(tmp_path, caffe_sd, image):
    torch.save(caffe_sd, tmp_path / "largefov.pth")
    model = DeepLab(21, DeepLabModelConfig(**CFG)).eval()
    assert load_init_weights(model, tmp_path / "largefov.pth") == {"loaded": 32, "skipped": 0}
    with torch.no_grad():
        out, ref = model(image[0]), reference_forward(caffe_sd, image[1])
    assert out.shape == ref.shape == (1, 21, 8, 8)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
    torch.testing.assert_close(model.classifier.weight, caffe_sd["fc8_voc12.weight"])
    with torch.no_grad():  # dropout (fc6, fc7) only while training
        assert torch.equal(model(image[0]), out) and not torch.equal(model.train()(image[0]), out)


def test_caffemodel_files_of_both_formats_read_exactly_and_load(tmp_path, caffe_sd, image):
    params = {k: v.numpy() for k, v in caffe_sd.items() if not k.startswith("fc8")}
    params["fc8.weight"] = np.random.default_rng(1).normal(0, 0.01, (1000, 1024, 1, 1)).astype(np.float32)
    params["fc8.bias"] = np.zeros(1000, np.float32)  # the ImageNet classifier of an init file
    (tmp_path / "v1.caffemodel").write_bytes(caffemodel_v1(params))
    (tmp_path / "current.caffemodel").write_bytes(caffemodel_current(params))
    layers = read_caffemodel(tmp_path / "v1.caffemodel")
    assert list(layers) == [k[:-len(".weight")] for k in params if k.endswith(".weight")]  # blob-less left out
    assert layers["fc6"][0].shape == (1, 1, 1024, 4608) and layers["conv1_1"][1].shape == (1, 1, 1, 64)
    np.testing.assert_array_equal(layers["fc6"][0].reshape(1024, 512, 3, 3), params["fc6.weight"])
    current = read_caffemodel(tmp_path / "current.caffemodel")
    for key, value in params.items():
        name, kind = key.rsplit(".", 1)
        np.testing.assert_array_equal(current[name][kind == "bias"], value)
    model = DeepLab(21, DeepLabModelConfig(**CFG)).eval()
    head = model.classifier.weight.detach().clone()
    for name in ("v1", "current"):
        counts = load_init_weights(model, tmp_path / f"{name}.caffemodel")
        assert counts == {"loaded": 30, "skipped": 2}  # fc8: 1000 ImageNet classes, not 21
    assert torch.equal(model.classifier.weight, head)
    model.classifier.load_state_dict({"weight": caffe_sd["fc8_voc12.weight"], "bias": caffe_sd["fc8_voc12.bias"]})
    with torch.no_grad():
        ref = reference_forward(caffe_sd, image[1])
        torch.testing.assert_close(model(image[0]), ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def test_incomplete_foreign_or_damaged_files_are_refused(tmp_path, caffe_sd):
    model = DeepLab(21, DeepLabModelConfig(**CFG))
    torch.save({k: v for k, v in caffe_sd.items() if k != "conv3_2.bias"}, tmp_path / "missing.pth")
    with pytest.raises(BadInputError, match="missing backbone.conv3_2.bias"):
        load_init_weights(model, tmp_path / "missing.pth")
    torch.save({**caffe_sd, "conv6_1.weight": torch.zeros(1)}, tmp_path / "extra.pth")
    with pytest.raises(BadInputError, match="unexpected conv6_1.weight"):
        load_init_weights(model, tmp_path / "extra.pth")
    other_fc6 = {**caffe_sd, "fc6.weight": torch.zeros(1024, 512, 1, 1)}  # not LargeFOV's 3x3 (x12) fc6
    torch.save(other_fc6, tmp_path / "other_fc6.pth")
    with pytest.raises(BadInputError, match=r"backbone.fc6.weight: shape \(1024, 512, 1, 1\)"):
        load_init_weights(model, tmp_path / "other_fc6.pth")
    torch.save(caffe_sd, tmp_path / "largefov.pth")
    resnet = DeepLab(21, DeepLabModelConfig(backbone="resnet101_caffe", variant="v1", multi_scale=False))
    with pytest.raises(BadInputError, match="needs deeplab.backbone: vgg16"):
        load_init_weights(resnet, tmp_path / "largefov.pth")
    data = caffemodel_v1({k: v.numpy() for k, v in caffe_sd.items()})
    (tmp_path / "cut.caffemodel").write_bytes(data[:len(data) // 2])
    with pytest.raises(BadInputError, match="cut.caffemodel: not a valid .caffemodel"):
        load_init_weights(model, tmp_path / "cut.caffemodel")
    (tmp_path / "train.caffemodel").write_text('name: "vgg128_noup"\nlayers { name: "conv1_1" }\n')
    with pytest.raises(BadInputError, match="train.caffemodel"):
        read_caffemodel(tmp_path / "train.caffemodel")
    with pytest.raises(BadInputError, match="absent.caffemodel: .caffemodel file is missing"):
        load_init_weights(model, tmp_path / "absent.caffemodel")


def test_param_groups_follow_the_largefov_prototxt():
    model = DeepLab(21, DeepLabModelConfig(**CFG))
    groups = model.param_groups()
    assert len(groups["backbone"]) == len(groups["backbone_bias"]) == 15
    assert all(p.dim() == 4 for p in groups["backbone"]) and all(p.dim() == 1 for p in groups["backbone_bias"])
    opt = seg.build_optimizer(model, seg.SegTrainConfig(lr=1e-3))
    # conv weights 1x, fc8 weights 10x and biases 20x, conv biases 2x; no decay on any bias.
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-3, 1e-2, 2e-2, 2e-3])
    assert [g["weight_decay"] for g in opt.param_groups] == pytest.approx([5e-4, 5e-4, 0.0, 0.0])
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
