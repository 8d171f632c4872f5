"""Map files (wsss.core.io.save_maps / load_maps): float16 as before, byte for byte; uint8 with each
class's peak kept, read back within half a step of 1/255 of that peak."""

from __future__ import annotations

import hashlib
import zipfile

import numpy as np
import pytest

from wsss.core.io import load_maps, save_maps


def members(path) -> dict[str, str]:
    """sha256 prefix of each array file inside the .npz (the zip's own timestamps aside)."""
    with zipfile.ZipFile(path) as zf:
        return {name: hashlib.sha256(zf.read(name)).hexdigest()[:16] for name in zf.namelist()}


def sample():
    rng = np.random.default_rng(7)
    maps = rng.random((3, 17, 23)).astype(np.float32) * 4.0
    maps[1] = 0  # a present class whose map is zero everywhere
    return maps, rng.random((4, 17, 23)).astype(np.float32)


def test_float16_files_are_byte_identical_to_before(tmp_path):
    """The digests were taken from save_maps before map_dtype existed: VOC and embedded runs are unchanged."""
    maps, probs = sample()
    save_maps(tmp_path / "a.npz", np.array([2, 5, 11]), maps, probs=probs)
    save_maps(tmp_path / "b.npz", np.array([0]), maps[:1], "float16", official=np.array(True))
    assert members(tmp_path / "a.npz") == {"classes.npy": "deb01a3aad37c5e5", "maps.npy": "26532d8eff3f8a23",
                                           "probs.npy": "238b644da8342a2e"}
    assert members(tmp_path / "b.npz") == {"classes.npy": "b8e743b963167836", "maps.npy": "f96248b97a0862b8",
                                           "official.npy": "93771288ec45b06f"}


def test_uint8_round_trips_within_a_step_of_each_peak(tmp_path):
    maps, probs = sample()
    save_maps(tmp_path / "f.npz", np.array([2, 5, 11]), maps)
    save_maps(tmp_path / "u.npz", np.array([2, 5, 11]), maps, "uint8", probs=probs)
    with np.load(tmp_path / "u.npz") as raw:
        assert raw["maps"].dtype == np.uint8 and raw["maps"].max() == 255
        np.testing.assert_array_equal(raw["peak"], maps.max(axis=(1, 2)))
    back = load_maps(tmp_path / "u.npz")
    assert sorted(back) == ["classes", "maps", "probs"]  # the same keys as a float16 file's
    assert back["maps"].dtype == np.float32 and back["classes"].tolist() == [2, 5, 11]
    peak = maps.max(axis=(1, 2))
    error = np.abs(back["maps"] - maps).max(axis=(1, 2))
    assert (error <= peak / 510 * (1 + 1e-5)).all() and error[1] == 0  # rounding: half a 1/255 step at most
    assert (back["maps"].max(axis=(1, 2)) == pytest.approx(peak, rel=1e-6))  # each peak exactly back
    np.testing.assert_array_equal(back["probs"], probs)  # other arrays stored as given
    save_maps(tmp_path / "u_alone.npz", np.array([2, 5, 11]), maps, "uint8")
    assert (tmp_path / "u_alone.npz").stat().st_size < (tmp_path / "f.npz").stat().st_size


def test_uint8_handles_an_image_without_classes(tmp_path):
    save_maps(tmp_path / "e.npz", np.zeros(0, int), np.zeros((0, 4, 5), np.float32), "uint8")
    assert load_maps(tmp_path / "e.npz")["maps"].shape == (0, 4, 5)
    with pytest.raises(ValueError, match="float16, uint8"):
        save_maps(tmp_path / "x.npz", np.zeros(0, int), np.zeros((0, 4, 5)), "int8")
