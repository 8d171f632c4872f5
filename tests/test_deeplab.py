"""DeepLab-v2: ASPP/model shapes, lr groups, init weights, loss, trainer resume, inference + CRF."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import torch
from reference_ops import bilinear

import wsss.stages.train_segmentation as seg
from wsss.core.io import BadInputError, read_label_png, write_id_list, write_image, write_label_png
from wsss.models.deeplab import ASPP, DeepLabModelConfig, DeepLabV2, FrozenBatchNorm2d, load_init_weights
from wsss.stages.infer_segmentation import infer_segmentation, load_deeplab

torch.set_num_threads(1)


def test_aspp_sums_rates_and_keeps_size():
    aspp = ASPP(16, 5, [6, 12, 18, 24])
    assert len(aspp.branches) == 4 and [b.dilation[0] for b in aspp.branches] == [6, 12, 18, 24]
    x = torch.randn(2, 16, 9, 11)
    out = aspp(x)
    assert out.shape == (2, 5, 9, 11)
    torch.testing.assert_close(out, sum(b(x) for b in aspp.branches))


@pytest.mark.parametrize("stride,size", [(4, 16), (8, 8)])
def test_small_deeplab_output_stride(stride, size):
    model = DeepLabV2(7, DeepLabModelConfig(backbone="small", width=8, small_output_stride=stride,
                                            aspp_rates=[1, 2], freeze_bn=False)).eval()
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 7, size, size)


def test_multi_scale_training_returns_each_scale_and_max():
    model = DeepLabV2(4, DeepLabModelConfig(backbone="small", width=8, aspp_rates=[1, 2], multi_scale=True,
                                            small_output_stride=4))
    outs = model.train()(torch.randn(1, 3, 64, 64))
    assert len(outs) == 4 and all(o.shape == (1, 4, 16, 16) for o in outs)
    torch.testing.assert_close(outs[-1], torch.stack(outs[:3]).amax(0))
    assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 4, 16, 16)


def test_frozen_bn_equals_batchnorm_in_eval_and_loads_its_state_dict():
    bn = torch.nn.BatchNorm2d(5).eval()
    with torch.no_grad():
        for t in (bn.weight, bn.bias, bn.running_mean):
            t.copy_(torch.randn(5))
        bn.running_var.copy_(torch.rand(5) + 0.5)
    frozen = FrozenBatchNorm2d(5)
    sd = {k: v for k, v in bn.state_dict().items() if k != "num_batches_tracked"}
    frozen.load_state_dict(sd)
    x = torch.randn(2, 5, 3, 4)
    torch.testing.assert_close(frozen(x), bn(x))
    assert not list(frozen.parameters())  # nothing to train


def test_resnet101_is_output_stride_8_with_frozen_bn():
    model = DeepLabV2(21, DeepLabModelConfig(backbone="resnet101", aspp_rates=[6, 12, 18, 24], freeze_bn=True)).eval()
    assert model.backbone.layer4[0].conv2.stride == (1, 1) and model.backbone.layer4[1].conv2.dilation == (4, 4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 21, 8, 8)


def test_param_groups_partition_parameters():
    model = DeepLabV2(5, DeepLabModelConfig(backbone="small", width=8, aspp_rates=[1, 2, 3], freeze_bn=False))
    groups = model.param_groups()
    ids = [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert len(groups["head_bias"]) == 3 and all(p.dim() == 1 for p in groups["head_bias"])
    assert not groups["backbone_bias"]  # its convs have none: no fourth optimizer group
    opt = seg.build_optimizer(model, seg.SegTrainConfig(lr=1e-3))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-3, 1e-2, 2e-2])


def test_init_weights_load_backbone_and_skip_other_class_count(tmp_path):
    cfg = DeepLabModelConfig(backbone="small", width=8, aspp_rates=[1, 2], multi_scale=False, freeze_bn=False)
    source = DeepLabV2(11, cfg)
    torch.save({"model": source.state_dict()}, tmp_path / "coco.pt")
    target = DeepLabV2(5, cfg)
    counts = load_init_weights(target, tmp_path / "coco.pt")
    assert counts["skipped"] == 4  # the ASPP weights and biases of the 11-class head
    torch.testing.assert_close(target.backbone.body[0][0].weight, source.backbone.body[0][0].weight)
    # A bare backbone state dict (torchvision-style names, no prefix) goes into the backbone.
    torch.save(source.backbone.state_dict(), tmp_path / "bare.pt")
    assert load_init_weights(DeepLabV2(5, cfg), tmp_path / "bare.pt")["loaded"] > 0
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(BadInputError, match="wrong.pt"):
        load_init_weights(target, tmp_path / "wrong.pt")
    with pytest.raises(BadInputError, match="absent.pt"):
        load_init_weights(target, tmp_path / "absent.pt")


def test_loss_ignores_255_and_survives_all_ignored():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    mask = torch.full((1, 8, 8), 255, dtype=torch.long)
    loss = seg.segmentation_loss(logits, mask)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    mask[0, :4] = 1
    mask[0, :2, :3] = 2
    mask[0, 3, 5:] = 0
    a = seg.segmentation_loss(logits, mask)
    # by hand: the logits upsampled bilinearly (align_corners=False) to the mask, then the mean over the
    # labelled pixels of −log softmax at the label; an MSC list sums the loss of each branch
    def expected(x):
        up = bilinear(x.detach().double().numpy()[0], (8, 8))
        log_p = up - np.log(np.exp(up).sum(0))
        labelled = mask[0].numpy() != 255
        return -np.take_along_axis(log_p, mask[0].numpy().clip(0, 2)[None], 0)[0][labelled].mean()

    assert a.item() == pytest.approx(expected(logits), rel=1e-6)
    small = torch.randn(1, 3, 2, 2)
    both = seg.segmentation_loss([logits, small], mask)
    assert both.item() == pytest.approx(expected(logits) + expected(small), rel=1e-6)


def make_dataset(root, n=6, size=32):
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    ids = [f"s{i}" for i in range(n)]
    rows = ["id,a,b"]
    for i, name in enumerate(ids):
        mask = np.zeros((size, size), np.uint8)
        c = 1 + i % 2
        y, x = rng.integers(4, size - 16, size=2)
        mask[y:y + 12, x:x + 12] = c
        image = np.full((size, size, 3), 60, np.uint8)
        image[mask == 1] = (220, 40, 40)
        image[mask == 2] = (40, 90, 230)
        write_image(root / "img" / f"{name}.jpg", image)
        write_label_png(root / "masks" / f"{name}.png", mask)
        rows.append(f"{name},{int(c == 1)},{int(c == 2)}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    write_id_list(root / "ids.txt", ids)
    return ids


SECTION = {"backbone": "small", "width": 8, "aspp_rates": [1, 2], "freeze_bn": False, "crop_size": 24,
           "scale_range": [24, 40], "iterations": 4, "batch_size": 2, "lr": 0.01, "checkpoint_every": 2,
           "init_weights": None, "num_workers": 0,
           "multi_scale": False, "small_output_stride": 4}


def run_train(root, name, section=SECTION):
    seg.train_segmentation(root / "ids.txt", root / "img", root / "masks", root / "labels.csv",
                           root / f"{name}.pt", root / f"{name}.ckpt", root / f"{name}.csv", section,
                           seed=3, device="cpu")
    return torch.load(root / f"{name}.pt", weights_only=False)


def steps_run(log_text: str) -> list[int]:
    """The optimisation steps each training call reports having run (wsss.core.train_loop)."""
    return [int(n) for n in re.findall(r"ran (\d+) optimisation steps", log_text)]


def run_dying(root, name, section=SECTION, die_in_call=3):
    """Train until the `die_in_call`-th step, which raises (a killed job): the step-2 checkpoint stays."""
    calls = {"n": 0}
    real_step = seg.seg_step

    def dying_step(model, batch):
        calls["n"] += 1
        if calls["n"] == die_in_call:
            raise KeyboardInterrupt("killed")
        return real_step(model, batch)

    seg.seg_step = dying_step
    try:
        with pytest.raises(KeyboardInterrupt):
            run_train(root, name, section)
    finally:
        seg.seg_step = real_step
    assert not (root / f"{name}.pt").exists()
    assert torch.load(root / f"{name}.ckpt", weights_only=False)["step"] == 2


def test_trainer_resumes_after_kill_to_identical_weights(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="wsss.core.train_loop")
    make_dataset(tmp_path)
    full = run_train(tmp_path, "full")
    assert steps_run(caplog.text) == [4]
    run_dying(tmp_path, "resumed")
    caplog.clear()
    resumed = run_train(tmp_path, "resumed")
    # 4 iterations - the step-2 checkpoint = 2 steps, and they started from it
    assert f"resumed from {tmp_path / 'resumed.ckpt'} at step 2" in caplog.text
    assert steps_run(caplog.text) == [2]
    assert full["config"] == resumed["config"]
    for k, v in full["model"].items():
        torch.testing.assert_close(resumed["model"][k], v, rtol=0, atol=0)
    assert not (tmp_path / "resumed.ckpt").exists()  # a finished training leaves no checkpoint


def test_trainer_names_missing_mask(tmp_path):
    make_dataset(tmp_path, n=3)
    (tmp_path / "masks" / "s2.png").unlink()
    with pytest.raises(BadInputError, match="s2.png"):
        run_train(tmp_path, "x")


def test_inference_writes_predictions_and_crf_independent_of_processes(tmp_path):
    ids = make_dataset(tmp_path)
    run_train(tmp_path, "m", {**SECTION, "iterations": 2})
    model, cfg = load_deeplab(tmp_path / "m.pt")
    assert cfg["num_classes"] == 3
    for p in (1, 2):
        n = infer_segmentation(tmp_path / "m.pt", tmp_path / "ids.txt", tmp_path / "img", tmp_path / f"pred{p}",
                               tmp_path / f"crf{p}", crf={"iterations": 3}, scales=[1.0, 0.5], flip=True,
                               device="cpu", processes=p)
        assert n == len(ids)
    # Without a CRF folder only the plain predictions are written, identical to the runs above.
    infer_segmentation(tmp_path / "m.pt", tmp_path / "ids.txt", tmp_path / "img", tmp_path / "pred0", None,
                       scales=[1.0, 0.5], flip=True, device="cpu")
    for i in ids:
        assert (tmp_path / "pred0" / f"{i}.png").read_bytes() == (tmp_path / "pred1" / f"{i}.png").read_bytes()
        pred = read_label_png(tmp_path / "pred1" / f"{i}.png")
        assert pred.shape == (32, 32) and pred.max() <= 2
        assert (tmp_path / "pred1" / f"{i}.png").read_bytes() == (tmp_path / "pred2" / f"{i}.png").read_bytes()
        assert (tmp_path / "crf1" / f"{i}.png").read_bytes() == (tmp_path / "crf2" / f"{i}.png").read_bytes()
        assert set(np.unique(read_label_png(tmp_path / "crf1" / f"{i}.png"))) <= {0, *np.unique(pred).tolist()}


@pytest.mark.parametrize("change", ["masks", "lr"])
def test_a_stale_checkpoint_is_not_resumed(tmp_path, caplog, change):
    """A killed run leaves its step-2 checkpoint; the rerun trains on other masks (new pseudo-masks)
    or with another lr. Resuming would start from weights trained differently: it must start over."""
    make_dataset(tmp_path, n=4)
    run_dying(tmp_path, "m", {**SECTION, "lr": 0.05})  # steps 1-2 (all 4 images) on the old masks / lr
    if change == "masks":
        write_label_png(tmp_path / "masks" / "s0.png", np.zeros((32, 32), np.uint8))
        section = {**SECTION, "lr": 0.05}
    else:
        section = SECTION  # lr 0.01
    caplog.set_level(logging.INFO, logger="wsss.core.train_loop")
    rerun = run_train(tmp_path, "m", section)
    assert "made with a different config; training from scratch" in caplog.text
    assert "resumed from" not in caplog.text and steps_run(caplog.text) == [4]
    fresh = run_train(tmp_path, "fresh", section)  # the same training without a stale checkpoint
    assert rerun["config"] == fresh["config"]
    for k, v in fresh["model"].items():
        torch.testing.assert_close(rerun["model"][k], v, rtol=0, atol=0)
