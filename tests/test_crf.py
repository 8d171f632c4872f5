"""Dense CRF: sharpening towards a true edge, determinism across process counts, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from wsss.core.io import BadInputError, read_label_png, save_maps, write_image, write_label_png
from wsss.stages.crf import CRFConfig, label_unary, probs_from_maps, refine_dir, refine_label, refine_probs


def disc_scene(seed: int = 0, size: int = 48, radius: float = 10.0, cls: int = 3):
    """An RGB image with a red disc (class `cls`) on green, with pixel noise, and its true mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = size / 2 + rng.uniform(-3, 3), size / 2 + rng.uniform(-3, 3)
    dist = np.hypot(yy - cy, xx - cx)
    truth = np.where(dist <= radius, cls, 0).astype(np.uint8)
    image = np.where((truth > 0)[..., None], [200, 60, 60], [40, 120, 40]).astype(np.float64)
    image = np.clip(image + rng.normal(0, 10, image.shape), 0, 255).astype(np.uint8)
    return image, truth, dist


def accuracy(pred, truth):
    return float((pred == truth).mean())


def test_label_unary_rows_sum_to_one_and_ignore_is_uniform():
    label = np.array([[0, 3], [255, 3]], dtype=np.uint8)
    p = label_unary(label, [0, 3], gt_prob=0.7)
    np.testing.assert_allclose(p.sum(0), 1.0, rtol=1e-6)
    assert p[1, 0, 1] == pytest.approx(0.7) and p[0, 0, 1] == pytest.approx(0.3)
    np.testing.assert_allclose(p[:, 1, 0], 0.5)


def test_bloated_blurred_mask_is_sharpened_towards_true_edge():
    image, truth, dist = disc_scene(seed=1)
    # A CAM-like pseudo-mask: the disc grown by 4 px with a fuzzy, blurred boundary.
    soft = gaussian_filter((dist <= 14.0).astype(np.float64), sigma=2.0)
    pseudo = np.where(soft > 0.5, 3, 0).astype(np.uint8)
    before = accuracy(pseudo, truth)
    refined = refine_label(image, pseudo, [3], CRFConfig())
    after = accuracy(refined, truth)
    assert set(np.unique(refined)) <= {0, 3}
    assert after > before + 0.03, (before, after)
    # The refined object area is closer to the true one (the edge moved inwards).
    assert abs((refined > 0).sum() - (truth > 0).sum()) < 0.5 * abs((pseudo > 0).sum() - (truth > 0).sum())


def test_probability_unary_sharpens_shifted_soft_map():
    image, truth, dist = disc_scene(seed=2)
    fg = gaussian_filter((dist <= 13.0).astype(np.float64), sigma=3.0).astype(np.float32)
    # An EPS-style map file: class 3 (0-based index 2) and a softmax with background last.
    classes, probs = probs_from_maps({"classes": np.array([2]), "maps": fg[None], "probs": np.stack([fg, 1 - fg])},
                                     bg_threshold=0.2)
    assert classes == [3, 0]
    before = accuracy(np.asarray(classes, np.uint8)[probs.argmax(0)], truth)
    after = accuracy(refine_probs(image, classes, probs, CRFConfig(unary="probs")), truth)
    assert after > before + 0.02, (before, after)


def test_probs_from_cams_adds_threshold_background():
    maps = np.zeros((1, 2, 2), np.float32)
    maps[0, 0, 0] = 4.0
    maps[0, 1, 1] = 0.4  # 0.1 of the peak: below the 0.2 background plane
    classes, probs = probs_from_maps({"classes": np.array([4]), "maps": maps}, bg_threshold=0.2)
    assert classes == [0, 5]  # background first, then 0-based class 4 as label 5
    np.testing.assert_allclose(probs.sum(0), 1.0, rtol=1e-6)
    assert probs.argmax(0).tolist() == [[1, 0], [0, 0]]


def write_scenes(tmp_path, n=5):
    images, masks, maps = tmp_path / "img", tmp_path / "masks", tmp_path / "maps"
    ids, labels = [], {}
    for i in range(n):
        image, truth, dist = disc_scene(seed=10 + i, cls=1 + i % 2)
        pseudo = np.where(dist <= 13.0, truth.max(), 0).astype(np.uint8)
        pseudo[0, :] = 255
        ids.append(f"im{i}")
        write_image(images / f"im{i}.jpg", image)
        write_label_png(masks / f"im{i}.png", pseudo)
        fg = gaussian_filter((dist <= 13.0).astype(np.float32), 2.0)
        save_maps(maps / f"im{i}.npz", np.array([truth.max() - 1]), fg[None])  # 0-based class indices
        vec = np.zeros(2, np.float32)
        vec[truth.max() - 1] = 1
        labels[f"im{i}"] = vec
    return ids, images, masks, maps, labels


@pytest.mark.parametrize("unary", ["labels", "probs"])
def test_refine_dir_identical_for_one_and_two_processes(tmp_path, unary):
    ids, images, masks, maps, labels = write_scenes(tmp_path)
    cfg = CRFConfig(unary=unary)
    outs = []
    for processes, order in ((1, ids), (2, ids[::-1])):
        out = tmp_path / f"out{processes}"
        assert refine_dir(order, images, out, cfg, masks_dir=masks, maps_dir=maps, labels=labels,
                          processes=processes) == len(ids)
        outs.append(out)
    for i in ids:
        a, b = (o / f"{i}.png" for o in outs)
        assert a.read_bytes() == b.read_bytes()
        lab = read_label_png(a)
        assert set(np.unique(lab)) <= {0, int(labels[i].argmax()) + 1}  # present classes + background only
    assert not list(tmp_path.glob(".out*"))  # no temporary directory left behind


def test_refine_dir_missing_mask_names_file(tmp_path):
    ids, images, masks, maps, labels = write_scenes(tmp_path, n=2)
    (masks / "im1.png").unlink()
    with pytest.raises(BadInputError, match="im1.png"):
        refine_dir(ids, images, tmp_path / "out", CRFConfig(), masks_dir=masks, labels=labels)
    assert not (tmp_path / "out").exists()


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="unary"):
        CRFConfig(unary="soft")
    with pytest.raises(ValueError, match="gt_prob"):
        CRFConfig(gt_prob=1.0)


def test_bench_crf_rows_for_each_process_count(tmp_path):
    from wsss_dev.bench.crf import bench_crf

    ids, images, masks, _, labels = write_scenes(tmp_path, n=4)
    rows = bench_crf(ids, images, masks, processes=(1, 2), crf={"iterations": 2}, labels=labels)
    assert [r["processes"] for r in rows] == [1, 2]
    assert all(r["images"] == 4 and r["images_per_s"] > 0 and r["identical_output"] for r in rows)
    assert rows[0]["speedup"] == 1.0


def test_refine_crf_shards_partition_and_match_unsharded(tmp_path):
    from wsss.core.io import write_id_list
    from wsss.stages.crf import refine_crf

    ids, images, masks, _, labels = write_scenes(tmp_path, n=5)
    write_id_list(tmp_path / "ids.txt", ids)
    (tmp_path / "labels.csv").write_text(
        "id,a,b\n" + "".join(f"{i},{int(v[0])},{int(v[1])}\n" for i, v in labels.items()))
    common = dict(id_list=tmp_path / "ids.txt", images_dir=images, masks_dir=masks, labels_csv=tmp_path / "labels.csv",
                  crf={"iterations": 3})
    refine_crf(out_dir=tmp_path / "all", **common)
    for shard in range(2):
        refine_crf(out_dir=tmp_path / f"shard{shard}", shard=shard, num_shards=2, **common)
    names = sorted(p.name for s in range(2) for p in (tmp_path / f"shard{s}").iterdir())
    assert names == sorted(f"{i}.png" for i in ids)
    for s in range(2):
        for p in (tmp_path / f"shard{s}").iterdir():
            assert p.read_bytes() == (tmp_path / "all" / p.name).read_bytes()


def test_crf_config_rejects_unknown_keys_job_sizes_included():
    from wsss.stages.crf import crf_config

    assert crf_config({"iterations": 4}, unary="probs").iterations == 4
    with pytest.raises(ValueError, match="processes"):  # a job's size is the `jobs` section's, never a setting
        crf_config({"iterations": 4, "processes": 8})
    with pytest.raises(ValueError, match="bi_sxy"):
        crf_config({"bi_sxy": 3})


def test_cam_sal_unary_carries_its_saliency_gating_and_its_crf_differs_from_cams(tmp_path):
    """A red object (class 3) above a grey band of context on which the CAM fires too (a railroad
    under a train); saliency covers the object only. cam's CRF keeps the band as the class, cam_sal's
    keeps it background: the gated unary's argmax is the cam_sal pseudo-mask itself."""
    from wsss.core.io import write_gray_png
    from wsss.methods.cam import cam_mask, cam_sal_mask

    size = 48
    yy, xx = np.mgrid[:size, :size]
    disc, band = np.hypot(yy - 18, xx - 24) <= 9, (yy >= 36) & (yy < 44)
    colour = np.where(disc[..., None], [200, 60, 60], np.where(band[..., None], [120, 120, 120], [40, 120, 40]))
    image = np.clip(colour + np.random.default_rng(0).normal(0, 8, colour.shape), 0, 255).astype(np.uint8)
    cam = gaussian_filter(disc * 3.0 + band * 1.8, 2.0).astype(np.float32)
    saliency = gaussian_filter(disc.astype(np.float32), 2.0)  # the band is not salient
    data = {"classes": np.array([2]), "maps": cam[None]}
    params = {"threshold": 0.4, "saliency_threshold": 0.5}

    labels, plain = probs_from_maps(data, 0.4)
    gated_labels, gated = probs_from_maps(data, 0.4, saliency, 0.5)
    assert labels == gated_labels == [0, 3]
    np.testing.assert_array_equal(np.uint8(labels)[plain.argmax(0)], cam_mask(data, None, params))
    np.testing.assert_array_equal(np.uint8(labels)[gated.argmax(0)], cam_sal_mask(data, saliency, params))
    salient = saliency >= 0.5
    np.testing.assert_array_equal(gated[:, salient], plain[:, salient])  # gating changes the non-salient only
    # Non-salient: the background score is 1 beside the max-normalised CAM (at most 1), then scaled to sum to one.
    norm = cam / cam.max()
    np.testing.assert_allclose(gated[0, ~salient], 1 / (1 + norm[~salient]), rtol=1e-6)
    assert (gated[0, ~salient] >= gated[1, ~salient]).all()

    images, maps, sal = tmp_path / "img", tmp_path / "maps", tmp_path / "sal"
    write_image(images / "im0.jpg", image)
    save_maps(maps / "im0.npz", data["classes"], data["maps"])
    write_gray_png(sal / "im0.png", saliency)
    cfg = CRFConfig(unary="probs", bg_threshold=0.4, saliency_threshold=0.5)
    refine_dir(["im0"], images, tmp_path / "cam", cfg, maps_dir=maps)
    refine_dir(["im0"], images, tmp_path / "cam_sal", cfg, maps_dir=maps, saliency_dir=sal)
    cam_crf, cam_sal_crf = read_label_png(tmp_path / "cam/im0.png"), read_label_png(tmp_path / "cam_sal/im0.png")
    assert (cam_crf[band] == 3).mean() > 0.7 and (cam_crf[disc] == 3).mean() > 0.95  # the CAM took the band
    assert (cam_sal_crf[band] == 0).all() and (cam_sal_crf[disc] == 3).mean() > 0.9
    assert not ((cam_sal_crf == 3) & ~disc).any()
    with pytest.raises(ValueError, match="saliency_threshold"):
        refine_dir(["im0"], images, tmp_path / "x", CRFConfig(unary="probs"), maps_dir=maps, saliency_dir=sal)
