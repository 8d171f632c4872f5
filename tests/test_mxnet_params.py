"""MXNet .params: byte layout, reader/writer round trips, ResNet-38 names, convert-mxnet, pretrained."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from wsss.__main__ import main
from wsss.core.io import BadInputError
from wsss.models.backbones import build_backbone
from wsss.models.mxnet_params import V1_MAGIC, V2_MAGIC, read_params, resnet38d_key, write_params
from wsss.models.resnet38d import ResNet38d

DTYPES = (np.float32, np.float64, np.float16, np.uint8, np.int32, np.int8, np.int64)


def _names(*names: str) -> bytes:
    out = struct.pack("<Q", len(names))
    for n in names:
        out += struct.pack("<Q", len(n)) + n.encode()
    return out


def test_writer_follows_the_byte_layout(tmp_path):
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    write_params(tmp_path / "v2.params", {"arg:w": arr}, fmt="v2")
    expected = (struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<Ii", 0xF993FAC9, 0) + struct.pack("<iqq", 2, 2, 3)
                + struct.pack("<iii", 1, 0, 0) + arr.tobytes() + _names("arg:w"))
    assert (tmp_path / "v2.params").read_bytes() == expected
    write_params(tmp_path / "legacy.params", {"arg:w": arr}, fmt="legacy")
    expected = (struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<III", 2, 2, 3) + struct.pack("<iii", 1, 0, 0)
                + arr.tobytes() + _names("arg:w"))
    assert (tmp_path / "legacy.params").read_bytes() == expected


def test_reader_decodes_hand_built_files(tmp_path):
    # V1 on a GPU context (dev_type 2, id 1), int32; V2 "none" array; a float64 legacy array
    a = np.array([[1, -2], [3, 4]], np.int32)
    b = np.array([0.5, 0.25], np.float64)
    data = (struct.pack("<QQQ", 0x112, 0, 3)
            + struct.pack("<I", V1_MAGIC) + struct.pack("<iqq", 2, 2, 2) + struct.pack("<iii", 2, 1, 4) + a.tobytes()
            + struct.pack("<Ii", V2_MAGIC, 0) + struct.pack("<i", 0)
            + struct.pack("<II", 1, 2) + struct.pack("<iii", 1, 0, 1) + b.tobytes()
            + _names("a", "none", "b"))
    (tmp_path / "x.params").write_bytes(data)
    got = read_params(tmp_path / "x.params")
    assert list(got) == ["a", "none", "b"] and got["none"] is None
    assert got["a"].dtype == np.int32 and np.array_equal(got["a"], a)
    assert got["b"].dtype == np.float64 and np.array_equal(got["b"], b)


@pytest.mark.parametrize("fmt", ["v2", "v1", "legacy", "v3"])
def test_round_trip_every_dtype(tmp_path, fmt):
    rng = np.random.default_rng(0)
    arrays = {f"arg:p{i}_{np.dtype(t).name}": (rng.normal(size=(3, 2, 1, 4)) * 50).astype(t)
              for i, t in enumerate(DTYPES)}
    arrays["aux:vector"] = np.linspace(0, 1, 7, dtype=np.float32)
    arrays["arg:empty"] = np.zeros((0, 5), np.float32)
    write_params(tmp_path / "p.params", arrays, fmt=fmt)
    got = read_params(tmp_path / "p.params")
    assert list(got) == list(arrays)
    for name, arr in arrays.items():
        assert got[name].dtype == arr.dtype and got[name].shape == arr.shape and np.array_equal(got[name], arr)
    write_params(tmp_path / "unnamed.params", list(arrays.values()), fmt=fmt)
    assert list(read_params(tmp_path / "unnamed.params")) == [str(i) for i in range(len(arrays))]


def test_bad_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.params"
    bad.write_bytes(struct.pack("<QQQ", 0x999, 0, 0))
    with pytest.raises(BadInputError, match="bad.params.*0x112"):
        read_params(bad)
    write_params(bad, {"w": np.ones((4, 4), np.float32)})
    bad.write_bytes(bad.read_bytes()[:60])
    with pytest.raises(BadInputError, match="bad.params.*truncated"):
        read_params(bad)
    bad.write_bytes(struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<Ii", V2_MAGIC, 1))
    with pytest.raises(BadInputError, match="sparse"):
        read_params(bad)
    with pytest.raises(BadInputError, match="missing"):
        read_params(tmp_path / "absent.params")


@pytest.mark.parametrize("mxnet, torch_key", [
    ("arg:conv1a_weight", "conv1a.weight"),
    ("arg:res2a_branch1_weight", "b2.conv_branch1.weight"),
    ("arg:res2a_branch2a_weight", "b2.conv_branch2a.weight"),
    ("arg:bn2a_branch2a_gamma", "b2.bn_branch2a.weight"),
    ("arg:bn2b1_branch2a_beta", "b2_1.bn_branch2a.bias"),
    ("aux:bn2b2_branch2b1_moving_mean", "b2_2.bn_branch2b1.running_mean"),
    ("aux:bn3b1_branch2b1_moving_var", "b3_1.bn_branch2b1.running_var"),
    ("arg:res4b5_branch2b1_weight", "b4_5.conv_branch2b1.weight"),
    ("arg:res5a_branch1_weight", "b5.conv_branch1.weight"),
    ("arg:bn5b2_branch2a_gamma", "b5_2.bn_branch2a.weight"),
    ("arg:res6a_branch2b2_weight", "b6.conv_branch2b2.weight"),
    ("aux:bn6a_branch2b2_moving_var", "b6.bn_branch2b2.running_var"),
    ("arg:bn7a_branch2b1_beta", "b7.bn_branch2b1.bias"),
    ("arg:res7a_branch1_weight", "b7.conv_branch1.weight"),
    ("arg:bn7_gamma", "bn7.weight"),
    ("arg:bn7_beta", "bn7.bias"),
    ("aux:bn7_moving_mean", "bn7.running_mean"),
    ("aux:bn7_moving_var", "bn7.running_var"),
    ("res3a_branch2a_weight", "b3.conv_branch2a.weight"),   # without arg:/aux: prefix
    ("arg:linear1000_weight", None),
    ("arg:linear1000_bias", None),
])
def test_resnet38_names(mxnet, torch_key):
    assert resnet38d_key(mxnet) == torch_key


@pytest.mark.parametrize("name", ["arg:fc8_weight", "arg:res2a_branch2a_gamma", "arg:bn2a_branch2a_weight",
                                  "arg:bn8_gamma"])
def test_unknown_names_are_rejected(name):
    with pytest.raises(ValueError, match="not part of ResNet-38"):
        resnet38d_key(name)


def mxnet_name(torch_key: str) -> str | None:
    """The ademxapp name of a resnet38d key, written out from the naming scheme (test oracle)."""
    if torch_key.endswith("num_batches_tracked"):
        return None
    if torch_key == "conv1a.weight":
        return "arg:conv1a_weight"
    parts = torch_key.split(".")
    bn_suffix = {"weight": "arg:{}_gamma", "bias": "arg:{}_beta", "running_mean": "aux:{}_moving_mean",
                 "running_var": "aux:{}_moving_var"}
    if parts[0] == "bn7":
        return bn_suffix[parts[1]].format("bn7")
    block, layer, param = parts
    stage, _, index = block[1:].partition("_")
    unit = f"{stage}a" if not index else f"{stage}b{index}"
    kind, branch = layer.split("_", 1)
    if kind == "conv":
        return f"arg:res{unit}_{branch}_weight"
    return bn_suffix[param].format(f"bn{unit}_{branch}")


@pytest.fixture(scope="module")
def resnet38_params(tmp_path_factory):
    """A random full-size ResNet-38 .params file (legacy format, as 2016 MXNet wrote) + its tensors."""
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in ResNet38d().state_dict().items()}
    rng = np.random.default_rng(0)
    arrays, expected = {}, {}
    for key, shape in shapes.items():
        name = mxnet_name(key)
        if name is None:
            continue
        arrays[name] = (rng.random(shape, dtype=np.float32) + 0.5 if key.endswith(("running_var", "bn7.weight"))
                        else rng.standard_normal(shape, dtype=np.float32) * 0.01)
        expected[key] = arrays[name]
    arrays["arg:linear1000_weight"] = np.zeros((1000, 4096), np.float32)
    arrays["arg:linear1000_bias"] = np.zeros(1000, np.float32)
    path = tmp_path_factory.mktemp("mx") / "ilsvrc-cls_rna-a1_cls1000_ep-0001.params"
    write_params(path, arrays, fmt="legacy")
    return path, expected


def test_every_resnet38d_key_has_one_mxnet_name(resnet38_params):
    _, expected = resnet38_params
    with torch.device("meta"):
        keys = [k for k in ResNet38d().state_dict() if not k.endswith("num_batches_tracked")]
    assert sorted(expected) == sorted(keys)
    assert all(resnet38d_key(mxnet_name(k)) == k for k in keys)


def test_convert_cli_and_pretrained_params(resnet38_params, tmp_path):
    params, expected = resnet38_params
    out = tmp_path / "res38d.pth"
    assert main(["convert-mxnet", str(params), str(out)]) == 0
    state = torch.load(out, weights_only=True)
    assert not any(k.startswith("linear1000") for k in state)
    net = ResNet38d()
    net.load_state_dict(state, strict=True)
    for key in ("conv1a.weight", "b4_5.conv_branch2b1.weight", "b7.bn_branch2b2.running_var", "bn7.weight"):
        assert np.array_equal(net.state_dict()[key].numpy(), expected[key])
    del state
    # classifier.pretrained: the .params directly and the converted .pth give the same weights
    from_params = build_backbone("resnet38d", str(params))
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in from_params.state_dict().items())
    del from_params, net
    from_pth = build_backbone("resnet38d", str(out))
    assert np.array_equal(from_pth.b6.conv_branch2a.weight.detach().numpy(), expected["b6.conv_branch2a.weight"])


def test_incomplete_params_are_rejected(tmp_path):
    path = tmp_path / "partial.params"
    write_params(path, {"arg:conv1a_weight": np.zeros((64, 3, 3, 3), np.float32)})
    with pytest.raises(BadInputError, match="partial.params.*missing"):
        main(["convert-mxnet", str(path), str(tmp_path / "x.pth")])
    assert not (tmp_path / "x.pth").exists()
    with pytest.raises(BadInputError, match="partial.params.*missing"):
        build_backbone("resnet38d", str(path))
    write_params(path, {"arg:fc6_weight": np.zeros(3, np.float32)})
    with pytest.raises(BadInputError, match="partial.params.*fc6"):
        build_backbone("resnet38d", str(path))
