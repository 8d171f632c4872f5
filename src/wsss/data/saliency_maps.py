"""User-supplied saliency maps: one stated conversion rule per format, or a rejection.

PIL's `convert("L")` turns anything into grey, so a jet-coloured map, a 16-bit PNG or a map with
transparency would be read as *some* grey values, silently wrong. `read_saliency_map` instead
applies exactly one rule per format and rejects the rest with a message that says how to export
a usable map. The rules (value in [0, 1] = saliency):

- L (grey 8-bit PNG/JPEG/TIFF):          value / 255
- I;16, I;16B, I;16L (grey 16-bit PNG):   value / 65535
- I (32-bit int; PIL's mode for many 16-bit PNGs): value / 65535, rejected if outside 0..65535
- 1 (bilevel):                            0 or 1
- LA:                                     the L channel / 255; alpha must be fully opaque (255)
- RGB:                                    accepted only if R == G == B everywhere (grey stored as
                                          colour): R / 255; a colour-mapped (e.g. jet) map is rejected
- RGBA:                                   as RGB, and alpha must be fully opaque: a transparent
                                          pixel has no stated saliency, so nothing is guessed
- P (paletted):                           accepted only if every palette entry used is grey
                                          (R == G == B): that grey / 255; else rejected
- F (32-bit float, e.g. TIFF):            accepted only if every value is finite and in [0, 1]
- .npy (2-D array):                       float or bool, finite and in [0, 1]; integers rejected
                                          (their scale, 255 or 65535 or 1, is not stated)
- any other mode (CMYK, YCbCr, ...):      rejected

A map whose size differs from its image is rejected unless `resize=True` (config key
`saliency.resize_mismatched`), which resizes it bilinearly.

Thresholded maps are often exported as 0/1 in 8-bit grey: by the L rule they would read as
saliency of at most 1/255, and EPS would train as if nothing were salient. One map cannot tell
(an image may have almost no salient pixel), a set can: `import_precomputed_saliency` rejects a
set whose integer maps never exceed 1, unless `binary=True` (config key `saliency.binary_maps`),
which reads the stored integers of such maps as they are, 0 or 1, and rejects any other value.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from wsss.core.io import BadInputError

GREY_EXPORT = ("export the maps as 8-bit grey PNGs (mode L: saliency * 255, e.g. "
               "PIL.Image.fromarray(np.uint8(np.round(s * 255)), 'L').save(path)), or as float .npy in [0, 1]")
SUFFIXES = (".png", ".npy", ".tif", ".tiff", ".jpg", ".bmp")


class SaliencyFormatError(BadInputError):
    """A saliency map whose format has no stated conversion (or a value outside its range)."""


def _reject(path, what: str) -> SaliencyFormatError:
    return SaliencyFormatError(f"{path}: {what}; {GREY_EXPORT}")


def _opaque(path, alpha: np.ndarray) -> None:
    if alpha.min() < 255:
        raise _reject(path, f"map has transparency ({int((alpha < 255).sum())} pixels with alpha < 255), "
                      "so their saliency is not stated")


def _unit(path, values: np.ndarray) -> np.ndarray:
    """Float maps: finite and in [0, 1], else rejected (never clipped: that would hide a wrong scale)."""
    values = np.asarray(values, dtype=np.float32)
    if not np.isfinite(values).all():
        raise _reject(path, "float map has NaN or infinite values")
    lo, hi = float(values.min()), float(values.max())
    if lo < 0 or hi > 1:
        raise _reject(path, f"float map has values in [{lo:.4g}, {hi:.4g}], outside [0, 1]")
    return values


def _from_image(path, img: Image.Image) -> tuple[np.ndarray, int | None]:
    """(values, scale): the stored integers and their full scale (255, 65535), or (saliency in
    [0, 1], None) for formats that store no integer scale (bilevel, float)."""
    mode = img.mode
    if mode == "L":
        return np.asarray(img, dtype=np.float32), 255
    if mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(img, dtype=np.float32), 65535
    if mode == "I":
        values = np.asarray(img, dtype=np.int64)
        if values.min() < 0 or values.max() > 65535:
            raise _reject(path, f"32-bit integer map has values in [{values.min()}, {values.max()}], "
                          "outside the 16-bit range 0..65535")
        return values.astype(np.float32), 65535
    if mode == "1":
        return np.asarray(img, dtype=np.float32), None  # PIL gives bool: 0 or 1
    if mode == "F":
        return _unit(path, np.asarray(img, dtype=np.float32)), None
    if mode == "LA":
        arr = np.asarray(img)
        _opaque(path, arr[..., 1])
        return arr[..., 0].astype(np.float32), 255
    if mode in ("RGB", "RGBA"):
        arr = np.asarray(img)
        if mode == "RGBA":
            _opaque(path, arr[..., 3])
        r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
        if not (np.array_equal(r, g) and np.array_equal(r, b)):
            raise _reject(path, f"{mode} map is in colour (R, G, B differ, e.g. a jet colour map), which has "
                          "no stated conversion to saliency")
        return r.astype(np.float32), 255
    if mode == "P":
        if "transparency" in img.info:
            raise _reject(path, "paletted map has transparency, so some saliency is not stated")
        index = np.asarray(img)
        palette = np.asarray(img.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        used = np.unique(index)
        if used.max() >= len(palette):
            raise _reject(path, "paletted map uses colours its palette does not define")
        colours = palette[used]
        if not ((colours[:, 0] == colours[:, 1]) & (colours[:, 0] == colours[:, 2])).all():
            raise _reject(path, "paletted map has colour palette entries (not grey), which have no stated "
                          "conversion to saliency")
        return palette[index, 0].astype(np.float32), 255
    raise _reject(path, f"map has image mode {mode}, which has no stated conversion to saliency")


def read_saliency_map(path: str | os.PathLike, size: tuple[int, int] | None = None,
                      resize: bool = False, binary: bool = False) -> np.ndarray:
    """A user-supplied saliency map as float32 (H, W) in [0, 1], by the rules of this module.

    `size` is the image's (width, height), as PIL's `Image.size`; a map of another size is a
    BadInputError unless `resize` (then bilinear). `binary`: integer maps are 0/1 masks, read as
    they are. Every failure is a BadInputError naming `path`.
    """
    return read_saliency_map_scaled(path, size, resize, binary)[0]


def read_saliency_map_scaled(path: str | os.PathLike, size: tuple[int, int] | None = None, resize: bool = False,
                             binary: bool = False) -> tuple[np.ndarray, tuple[int, int] | None]:
    """`read_saliency_map`, and for an integer format (stored peak value, full scale), e.g. (1, 255)
    for an 8-bit 0/1 mask; None for formats without an integer scale (.npy, float, bilevel)."""
    path = Path(path)
    scale = None
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
            if arr.ndim != 2:
                raise _reject(path, f".npy map has shape {arr.shape}; expected a 2-D (height, width) array")
            if arr.dtype == bool:
                values = arr.astype(np.float32)
            elif np.issubdtype(arr.dtype, np.floating):
                values = _unit(path, arr)
            else:
                raise _reject(path, f".npy map has dtype {arr.dtype}: integer maps have no stated scale")
        else:
            ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file must fail, not read half grey
            with Image.open(path) as img:
                img.load()
                values, scale = _from_image(path, img)
    except BadInputError:
        raise
    except FileNotFoundError:
        raise BadInputError(f"{path}: saliency map is missing; add it to saliency.precomputed_dir") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise BadInputError(f"{path}: cannot decode saliency map ({err}); replace the file "
                            f"({GREY_EXPORT})") from err
    peak = None
    if scale is not None:
        peak = int(values.max()) if values.size else 0
        if binary and peak > 1:
            raise BadInputError(f"{path}: saliency.binary_maps is set, but this map stores values up to {peak} "
                                f"(of 0..{scale}), so it is not a 0/1 mask; unset saliency.binary_maps to read "
                                f"it as value / {scale}")
        values = values if binary else values / float(scale)
    if size is not None and (values.shape[1], values.shape[0]) != tuple(size):
        if not resize:
            raise BadInputError(f"{path}: saliency map is {values.shape[1]}x{values.shape[0]} but its image is "
                                f"{size[0]}x{size[1]}; export it at the image's size, or set "
                                "saliency.resize_mismatched: true to resize it (bilinear)")
        values = np.asarray(Image.fromarray(values, mode="F").resize(tuple(size), Image.BILINEAR))
        values = np.clip(values, 0.0, 1.0)  # bilinear stays in range up to rounding
    return np.ascontiguousarray(values, dtype=np.float32), (None if scale is None else (peak, scale))


def find_map(src_dir: Path, image_id: str) -> list[Path]:
    """The map file(s) `<src_dir>/<id><suffix>` for the accepted suffixes (more than one is ambiguous)."""
    return [src_dir / f"{image_id}{s}" for s in SUFFIXES if (src_dir / f"{image_id}{s}").is_file()]
