"""User-supplied saliency maps: one conversion per format or a rejection; the import checks all maps."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wsss.core.io import BadInputError, read_gray_png, read_gray_u8, write_id_list, write_image
from wsss.data.saliency_maps import SaliencyFormatError, read_saliency_map
from wsss.stages.infer_saliency import import_precomputed_saliency

H, W = 6, 8
RAMP = np.arange(H * W, dtype=np.uint8).reshape(H, W) * 5  # 0..235


def _save(tmp_path, name, img):
    path = tmp_path / name
    img.save(path)
    return path


def test_grey_8_bit(tmp_path):
    p = _save(tmp_path, "a.png", Image.fromarray(RAMP, "L"))
    np.testing.assert_allclose(read_saliency_map(p), RAMP / 255.0, atol=1e-7)


def test_grey_16_bit_is_divided_by_65535(tmp_path):
    values = (RAMP.astype(np.uint16) * 257)
    p = tmp_path / "a.png"
    Image.fromarray(values).save(p)  # uint16 → I;16
    with Image.open(p) as im:
        assert im.mode in ("I;16", "I")  # PIL versions differ; both have the stated rule
    np.testing.assert_allclose(read_saliency_map(p), values / 65535.0, atol=1e-6)


def test_grey_stored_as_rgb_and_opaque_rgba(tmp_path):
    rgb = np.stack([RAMP] * 3, -1)
    p = _save(tmp_path, "rgb.png", Image.fromarray(rgb, "RGB"))
    np.testing.assert_allclose(read_saliency_map(p), RAMP / 255.0, atol=1e-7)
    rgba = np.concatenate([rgb, np.full((H, W, 1), 255, np.uint8)], -1)
    p = _save(tmp_path, "rgba.png", Image.fromarray(rgba, "RGBA"))
    np.testing.assert_allclose(read_saliency_map(p), RAMP / 255.0, atol=1e-7)
    rgba[0, 0, 3] = 0
    p = _save(tmp_path, "transparent.png", Image.fromarray(rgba, "RGBA"))
    with pytest.raises(SaliencyFormatError, match="transparent.png: map has transparency"):
        read_saliency_map(p)


def test_colour_mapped_map_is_rejected_with_export_hint(tmp_path):
    jet = np.zeros((H, W, 3), np.uint8)
    jet[..., 0], jet[..., 2] = RAMP, 255 - RAMP
    p = _save(tmp_path, "jet.png", Image.fromarray(jet, "RGB"))
    with pytest.raises(SaliencyFormatError, match=r"jet.png: RGB map is in colour.*8-bit grey PNGs"):
        read_saliency_map(p)
    # PIL's convert("L") would have read it silently: the package's own reader is not for user maps
    assert read_gray_png(p).shape == (H, W)


def test_palette_grey_accepted_colour_rejected(tmp_path):
    img = Image.fromarray(RAMP // 5, "P")
    img.putpalette([v for k in range(256) for v in (k * 5 % 256,) * 3])
    p = _save(tmp_path, "grey_p.png", img)
    np.testing.assert_allclose(read_saliency_map(p), RAMP / 255.0, atol=1e-7)
    img.putpalette([v for k in range(256) for v in (k, 0, 255 - k)])
    p = _save(tmp_path, "colour_p.png", img)
    with pytest.raises(SaliencyFormatError, match="colour_p.png: paletted map has colour palette entries"):
        read_saliency_map(p)


def test_la_bilevel_float_and_npy(tmp_path):
    la = np.stack([RAMP, np.full_like(RAMP, 255)], -1)
    p = _save(tmp_path, "la.png", Image.fromarray(la, "LA"))
    np.testing.assert_allclose(read_saliency_map(p), RAMP / 255.0, atol=1e-7)
    p = _save(tmp_path, "bi.png", Image.fromarray(RAMP > 100))
    with Image.open(p) as im:
        assert im.mode == "1"
    np.testing.assert_array_equal(read_saliency_map(p), (RAMP > 100).astype(np.float32))
    f = (RAMP / 255.0).astype(np.float32)
    p = _save(tmp_path, "f.tif", Image.fromarray(f, "F"))
    np.testing.assert_allclose(read_saliency_map(p), f)
    p = _save(tmp_path, "f_bad.tif", Image.fromarray(f * 255, "F"))
    with pytest.raises(SaliencyFormatError, match=r"f_bad.tif: float map has values in \[0, 235\], outside"):
        read_saliency_map(p)
    np.save(tmp_path / "m.npy", f)
    np.testing.assert_allclose(read_saliency_map(tmp_path / "m.npy"), f)
    np.save(tmp_path / "int.npy", RAMP)
    with pytest.raises(SaliencyFormatError, match="int.npy: .npy map has dtype uint8"):
        read_saliency_map(tmp_path / "int.npy")


def test_other_modes_and_sizes(tmp_path):
    p = _save(tmp_path, "cmyk.jpg", Image.new("CMYK", (W, H)))
    with pytest.raises(SaliencyFormatError, match="cmyk.jpg: map has image mode CMYK"):
        read_saliency_map(p)
    p = _save(tmp_path, "a.png", Image.fromarray(RAMP, "L"))
    with pytest.raises(BadInputError, match=r"a.png: saliency map is 8x6 but its image is 16x12.*resize_mismatched"):
        read_saliency_map(p, size=(16, 12))
    assert read_saliency_map(p, size=(16, 12), resize=True).shape == (12, 16)


def _setup(tmp_path, n=13):
    images, maps = tmp_path / "JPEGImages", tmp_path / "maps"
    maps.mkdir()
    ids = [f"im{k:02d}" for k in range(n)]
    for i in ids:
        write_image(images / f"{i}.jpg", np.zeros((H, W, 3), np.uint8))
        Image.fromarray(RAMP, "L").save(maps / f"{i}.png")
    write_id_list(tmp_path / "ids.txt", ids)
    return images, maps, [tmp_path / "ids.txt"], ids


def test_import_lists_every_bad_map_and_succeeds_once_they_are_replaced(tmp_path):
    images, maps, lists, ids = _setup(tmp_path)
    jet = np.zeros((H, W, 3), np.uint8)
    jet[..., 0] = RAMP
    bad = ids[:12]
    for i in bad:
        Image.fromarray(jet, "RGB").save(maps / f"{i}.png")
    out = tmp_path / "out"
    with pytest.raises(BadInputError) as err:
        import_precomputed_saliency(maps, images, lists, out, processes=2)
    msg = str(err.value)
    assert "12 of 13 precomputed saliency maps are unusable" in msg and "... and 2 more" in msg
    assert f"{maps / 'im00.png'}: RGB map is in colour" in msg
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    for i in bad:  # the fix: re-export as grey (here: 16-bit grey, converted by its stated rule)
        (maps / f"{i}.png").unlink()
        np.save(maps / f"{i}.npy", (RAMP / 255.0).astype(np.float32))
    assert import_precomputed_saliency(maps, images, lists, out, processes=2) == 0
    for i in ids:
        np.testing.assert_allclose(read_gray_png(out / f"{i}.png"), RAMP / 255.0, atol=1 / 255)
    assert (out / "im12.png").stat().st_ino == (maps / "im12.png").stat().st_ino  # fitting L PNG: linked


def test_import_rejects_mismatched_size_unless_enabled(tmp_path):
    images, maps, lists, ids = _setup(tmp_path, n=2)
    Image.fromarray(RAMP[:4], "L").save(maps / "im01.png")
    with pytest.raises(BadInputError, match=r"im01.png: saliency map is 8x4 but its image is 8x6"):
        import_precomputed_saliency(maps, images, lists, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert import_precomputed_saliency(maps, images, lists, tmp_path / "out", resize_mismatched=True) == 1


def test_import_rejects_two_maps_for_one_id(tmp_path):
    images, maps, lists, ids = _setup(tmp_path, n=2)
    np.save(maps / "im00.npy", np.zeros((H, W), np.float32))
    with pytest.raises(BadInputError, match="im00.png: 2 maps for id im00"):
        import_precomputed_saliency(maps, images, lists, tmp_path / "out")
    (maps / "im00.npy").unlink()
    import_precomputed_saliency(maps, images, lists, tmp_path / "out")


def test_a_set_of_0_1_maps_in_8_bit_grey_is_rejected_naming_the_folder_and_the_scale(tmp_path):
    """Thresholded maps saved as 0/1 in 8-bit grey would read as saliency <= 1/255 by the L rule:
    the import refuses the set (nothing written) and says how to fix it."""
    images, maps, lists, ids = _setup(tmp_path, n=3)
    mask = (RAMP > 100).astype(np.uint8)  # 0/1
    for i in ids:
        Image.fromarray(mask, "L").save(maps / f"{i}.png")
    out = tmp_path / "out"
    with pytest.raises(BadInputError) as err:
        import_precomputed_saliency(maps, images, lists, out, processes=2)
    msg = str(err.value)
    assert msg.startswith(f"{maps}: all 3 integer saliency maps (8-bit (0..255)) store values in 0..1 only")
    assert "at most 0.0039" in msg and "saliency.binary_maps: true" in msg and "(0 and 255)" in msg
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    # One map at full scale among them: the set uses its format's range, nothing is rejected.
    Image.fromarray(mask * 255, "L").save(maps / f"{ids[0]}.png")
    import_precomputed_saliency(maps, images, lists, out)
    assert read_gray_u8(out / f"{ids[1]}.png").max() == 1  # the 0/1 maps stay as they are: dark
    # Under the explicit key, the 0/1 maps are masks: 1 is fully salient (written as 255, not linked).
    out2 = tmp_path / "out2"
    for i in ids:
        Image.fromarray(mask, "L").save(maps / f"{i}.png")
    import_precomputed_saliency(maps, images, lists, out2, binary_maps=True)
    for i in ids:
        np.testing.assert_array_equal(read_gray_png(out2 / f"{i}.png"), mask.astype(np.float32))
        assert (out2 / f"{i}.png").stat().st_ino != (maps / f"{i}.png").stat().st_ino


def test_binary_maps_rejects_a_map_that_is_not_0_1(tmp_path):
    images, maps, lists, ids = _setup(tmp_path, n=2)  # full-scale 0..235 ramps
    with pytest.raises(BadInputError, match=r"im00.png: saliency.binary_maps is set, but this map stores values "
                                            r"up to 235 \(of 0..255\)"):
        import_precomputed_saliency(maps, images, lists, tmp_path / "out", binary_maps=True)
    assert not (tmp_path / "out").exists()


def test_16_bit_0_1_maps_are_rejected_too(tmp_path):
    images, maps, lists, ids = _setup(tmp_path, n=2)
    for i in ids:
        Image.fromarray((RAMP > 100).astype(np.uint16)).save(maps / f"{i}.png")
    with pytest.raises(BadInputError, match=r"all 2 integer saliency maps \(16-bit \(0..65535\)\) store values in "
                                            r"0..1 only"):
        import_precomputed_saliency(maps, images, lists, tmp_path / "out")
