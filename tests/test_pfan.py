"""PFAN model and loss: shapes, loss behaviour, backbone weights, save/reload."""

import numpy as np
import pytest
import torch
import torchvision

from wsss.core.io import BadInputError
from wsss.core.model_files import save_model
from wsss.models.pfan import PFAN, PFANConfig, PFANLossConfig, laplacian_edges, pfan_loss
from wsss.stages.infer_saliency import load_pfan, predict

torch.set_num_threads(1)
TINY = PFANConfig(width=0.0625, batch_norm=True, kernel=5, backbone_weights=None)


@pytest.mark.parametrize("size", [(32, 32), (40, 56)])
def test_forward_shape_matches_input(size):
    torch.manual_seed(0)
    model = PFAN(TINY).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 1, *size)
    assert torch.isfinite(out).all()


def test_taps_are_the_published_layers():
    # torchvision VGG-16 (no BN): ReLU after conv1_2, conv2_2, conv3_3, conv4_3, conv5_3.
    assert PFAN(PFANConfig(width=0.0625, backbone_weights=None))._taps == [3, 8, 15, 22, 29]
    with_bn = PFAN(TINY)
    convs_before = [sum(isinstance(m, torch.nn.Conv2d) for m in list(with_bn.features)[:i]) for i in with_bn._taps]
    assert convs_before == [2, 4, 7, 10, 13]


def test_full_width_loads_torchvision_vgg16_weights(tmp_path):
    vgg = torchvision.models.vgg16(weights=None)
    path = tmp_path / "vgg16.pth"
    torch.save(vgg.state_dict(), path)
    model = PFAN(PFANConfig(width=1.0, batch_norm=False, backbone_weights=str(path)))
    assert torch.equal(model.features[28].weight, vgg.features[28].weight)
    with pytest.raises(BadInputError, match="do not fit"):
        PFAN(PFANConfig(width=0.5, backbone_weights=str(path)))
    with pytest.raises(BadInputError, match="missing"):
        PFAN(PFANConfig(width=0.0625, backbone_weights=str(tmp_path / "nope.pth")))


def test_laplacian_edges_zero_on_flat_and_positive_on_border():
    flat = torch.full((1, 1, 8, 8), 0.7)
    assert laplacian_edges(flat).abs().max() < 1e-6
    square = torch.zeros(1, 1, 8, 8)
    square[..., 2:6, 2:6] = 1
    e = laplacian_edges(square)[0, 0]
    assert e[2, 2] > 0.9 and e[0, 0] == 0 and e[4, 4] == 0


def test_loss_prefers_the_right_answer_and_weights_positives():
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:12, 4:12] = 1
    good = pfan_loss((mask * 2 - 1) * 8, mask)
    bad = pfan_loss((1 - mask * 2) * 8, mask)
    flat = pfan_loss(torch.zeros_like(mask), mask)
    assert good["loss"] < flat["loss"] < bad["loss"]
    assert good["loss"] > 0 and good["edge"] >= 0
    # alpha mixes the two terms exactly.
    cfg = PFANLossConfig(alpha=0.7)
    out = pfan_loss(torch.zeros_like(mask), mask, cfg)
    assert torch.isclose(out["loss"], 0.7 * out["bce"] + 0.3 * out["edge"])
    # With logits 0, BCE per pixel is log 2, positives weighted by pos_weight.
    frac = mask.mean()
    expected = np.log(2) * (frac * 1.12 + (1 - frac))
    assert torch.isclose(flat["bce"], expected, atol=1e-5)


def test_loss_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    model = PFAN(TINY)
    x = torch.randn(2, 3, 32, 32)
    mask = (torch.rand(2, 1, 32, 32) > 0.5).float()
    pfan_loss(model(x), mask)["loss"].backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None]
    assert not dead


def test_save_and_reload_gives_identical_maps(tmp_path):
    torch.manual_seed(0)
    model = PFAN(TINY)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(4, 3, 32, 32)
    mask = (torch.rand(4, 1, 32, 32) > 0.5).float()
    for _ in range(2):  # move weights and BN statistics away from their initial values
        opt.zero_grad()
        pfan_loss(model(x), mask)["loss"].backward()
        opt.step()
    model.eval()
    path = tmp_path / "pfan.pt"
    from dataclasses import asdict
    save_model(path, model, {"model": {**asdict(TINY), "input_size": 32}})
    loaded, size = load_pfan(path, torch.device("cpu"))
    assert size == 32
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (30, 45, 3), dtype=np.uint8), rng.integers(0, 256, (50, 20, 3), dtype=np.uint8)]
    from wsss.core.device import place_model

    # load_pfan places the model in channels_last: compare in that layout (NCHW rounds differently)
    a = predict(place_model(model, torch.device("cpu")), images, 32, torch.device("cpu"))
    b = predict(loaded, images, size, torch.device("cpu"))
    for pa, pb, im in zip(a, b, images):
        assert pa.shape == im.shape[:2]
        np.testing.assert_array_equal(pa, pb)


def test_load_rejects_foreign_files(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"model": {}, "config": {}}, path)
    with pytest.raises(BadInputError, match="input_size"):
        load_pfan(path, torch.device("cpu"))
    with pytest.raises(BadInputError, match="missing"):
        load_pfan(tmp_path / "none.pt", torch.device("cpu"))
