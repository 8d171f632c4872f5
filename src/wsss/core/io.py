"""File formats shared by every stage: palette label PNGs, grey maps, atomic writes.

Label PNGs are read and written with PIL in palette ("P") mode: OpenCV expands a
palette PNG to colour and loses the class indices.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from wsss.core.errors import BadInputError  # noqa: F401 (re-exported: wsss.core.io.BadInputError)
from wsss.core.hints import rerun_hint

IGNORE_INDEX = 255


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Hard-link `src` to `dst` (no extra disk), copying where links cannot cross file systems."""
    import shutil

    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def label_palette() -> list[int]:
    """The colour map of every label PNG the workflow writes, whatever the dataset (768 ints): PASCAL
    VOC's, bit-interleaved class index → RGB, 255 → (224, 224, 192)."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette.extend([r, g, b])
    return palette


_PALETTE = label_palette()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp/mkdtemp insert 8 characters of this set between prefix and suffix; matching exactly that
# keeps the stale-temp cleanup off the temp files of *other* outputs (e.g. `a.b.png` beside `a.png`).
_RANDOM = r"[a-z0-9_]{8}"


def _inside_temp_dir(path: Path) -> bool:
    """True when `path` lies inside an atomic_dir temp folder (fresh: nothing stale to clean)."""
    return any(re.fullmatch(rf"\..+\.{_RANDOM}\.tmp", part) for part in path.parent.parts)


def _remove_stale(parent: Path, pattern: str) -> None:
    """Remove leftovers of a killed (SIGKILL: no `finally`) earlier write of the same output.

    Snakemake runs at most one job per output at a time, so a sibling temp of the same output is
    never a live one.
    """
    import shutil

    regex = re.compile(pattern)
    try:
        entries = list(os.scandir(parent))
    except FileNotFoundError:
        return
    for entry in entries:
        if regex.fullmatch(entry.name):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename onto `path` only if the block succeeds.

    A killed job therefore never leaves a file that looks finished; the temp file a SIGKILL
    leaves (`.<stem>.<random>.tmp<suffix>`) is removed by the next write of the same output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    if not _inside_temp_dir(path):  # per-image writes into a fresh temp folder skip the scan
        _remove_stale(path.parent, rf"\.{re.escape(path.stem)}\.{_RANDOM}\.tmp{re.escape(suffix)}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; rename onto `path` only on success.

    The temp folder (`.<name>.<random>.tmp`) is removed on failure; one left by a SIGKILLed
    earlier run of the same output is removed when this one starts.
    """
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not _inside_temp_dir(path):
        _remove_stale(path.parent, rf"\.{re.escape(path.name)}\.{_RANDOM}\.tmp")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_label_png(path: str | os.PathLike, label: np.ndarray) -> None:
    """Write a (H, W) uint8 label map as a VOC-palette PNG, atomically."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label map for {path} must be 2-D, got shape {label.shape}")
    img = Image.fromarray(label.astype(np.uint8), mode="P")
    img.putpalette(_PALETTE)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """Read a label PNG (palette or grey) as a (H, W) uint8 array of class indices."""
    try:
        with Image.open(path) as img:
            if img.mode not in ("P", "L"):
                raise BadInputError(
                    f"{path}: label PNG has mode {img.mode}; expected a palette (P) or grey (L) PNG of "
                    "class indices (OpenCV converts to RGB: save with PIL). Or "
                    f"{rerun_hint(path)}")
            return np.array(img, dtype=np.uint8)
    except FileNotFoundError:
        raise BadInputError(f"{path}: label PNG is missing; {rerun_hint(path)}") from None
    except (OSError, SyntaxError) as err:
        if isinstance(err, BadInputError):
            raise
        raise BadInputError(f"{path}: cannot decode label PNG ({err}); {rerun_hint(path)}") from err


def write_gray_png(path: str | os.PathLike, values: np.ndarray) -> None:
    """Write a map in [0, 1] (float) or uint8 as an 8-bit grey PNG, atomically."""
    values = np.asarray(values)
    if values.dtype != np.uint8:
        values = np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(values, mode="L").save(tmp, format="PNG")


def read_gray_png(path: str | os.PathLike) -> np.ndarray:
    """Read an 8-bit grey PNG written by this package (e.g. a saliency map) as float32 in [0, 1].

    User-supplied maps go through `wsss.data.saliency_maps.read_saliency_map`, which states a
    conversion per format instead of PIL's convert("L").
    """
    return read_gray_u8(path).astype(np.float32) / 255.0


def _read_as(path: str | os.PathLike, mode: str, what: str, missing_fix: str = "") -> np.ndarray:
    """A PIL-decoded file converted to `mode`, as uint8; a missing or broken file names its fix."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert(mode), dtype=np.uint8)
    except FileNotFoundError:
        raise BadInputError(f"{path}: {what} is missing; {missing_fix}{rerun_hint(path)}") from None
    except OSError as err:
        raise BadInputError(f"{path}: cannot decode {what} ({err}); {rerun_hint(path)}") from err


def read_gray_u8(path: str | os.PathLike) -> np.ndarray:
    """An 8-bit grey PNG as its stored values, (H, W) uint8 (`read_gray_png` divides them by 255)."""
    return _read_as(path, "L", "map")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 RGB."""
    return _read_as(path, "RGB", "image", "check dataset.root, or ")


def write_image(path: str | os.PathLike, image: np.ndarray, quality: int = 95) -> None:
    """Write an (H, W, 3) uint8 RGB image (JPEG or PNG by suffix), atomically."""
    with atomic_path(path) as tmp:
        fmt = "JPEG" if Path(path).suffix.lower() in (".jpg", ".jpeg") else "PNG"
        Image.fromarray(np.asarray(image, dtype=np.uint8), mode="RGB").save(tmp, format=fmt, quality=quality)


MAP_DTYPES = ("float16", "uint8")


def save_maps(path: str | os.PathLike, classes: np.ndarray, maps: np.ndarray, dtype: str = "float16",
              **extra: np.ndarray) -> None:
    """Store localization maps compactly: `classes` (K,) int indices and `maps` (K, H, W), non-negative.

    `dtype` float16 stores the maps as they are. uint8 stores each class divided by its peak, x255,
    rounded, plus the K peaks (`peak`, float32), so that loading gives back the scale within 1/510 of
    each peak: 3-7x smaller files at COCO scale (docs/experiments.md, "MS-COCO footprint"), and a
    pseudo-mask pixel only flips where two classes are within that of each other. `extra` arrays
    are stored as given.
    """
    if dtype not in MAP_DTYPES:
        raise ValueError(f"map dtype {dtype!r}; use one of {', '.join(MAP_DTYPES)}")
    maps = np.asarray(maps)
    if dtype == "uint8":
        peak = maps.max(axis=(1, 2)).astype(np.float32)  # (K,); K may be 0
        scale = np.where(peak > 0, 255.0 / np.where(peak > 0, peak, 1.0), 0.0)  # an all-zero class stays 0
        stored = {"maps": np.rint(np.clip(maps * scale[:, None, None], 0, 255)).astype(np.uint8), "peak": peak}
    else:
        stored = {"maps": maps.astype(np.float16)}
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, classes=np.asarray(classes, dtype=np.int16), **stored, **extra)


def load_maps(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load what `save_maps` wrote, in either dtype; `maps` comes back as float32 at its stored scale."""
    try:
        with np.load(path) as data:
            out = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise BadInputError(f"{path}: map file is missing; {rerun_hint(path)}") from None
    except (OSError, ValueError, EOFError) as err:  # truncated zip / not an npz
        raise BadInputError(f"{path}: cannot read map file ({err}); {rerun_hint(path)}") from err
    if "maps" not in out:
        raise BadInputError(f"{path}: no 'maps' array (not written by save_maps); {rerun_hint(path)}")
    maps = out["maps"].astype(np.float32)
    if "peak" in out:  # the uint8 layout: back to each class's scale
        maps *= (out.pop("peak").astype(np.float32) / 255.0)[:, None, None]
    out["maps"] = maps
    return out


def read_id_list(path: str | os.PathLike) -> list[str]:
    """Read an ImageSets-style id list (one id per line, blank lines ignored).

    An id must be free of whitespace: cutting "2008 000001" at the space would hand a wrong id to
    every later stage, whose error would then blame another file. An empty list is an error too:
    every list a stage reads names the images it works on, and an empty one would otherwise fail
    deep inside a training loop (or write an empty table) without naming the file.
    """
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise BadInputError(f"{path}: id list is missing; {rerun_hint(path)}") from None
    except UnicodeDecodeError as err:
        raise BadInputError(f"{path}: id list is not text ({err}); {rerun_hint(path)}") from err
    ids, bad = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        item = line.strip()
        if not item:
            continue
        if len(item.split()) > 1:
            bad.append((number, item))
        ids.append(item)
    if bad:
        number, item = bad[0]
        raise BadInputError(f"{path}: line {number} holds {item!r}, an id with whitespace "
                            f"({len(bad)} such line(s)); ids name files and must have none — fix the "
                            f"list (one id per line), or {rerun_hint(path)}")
    if not ids:
        raise BadInputError(f"{path}: id list is empty (no id in it); {rerun_hint(path)}")
    return ids


def write_id_list(path: str | os.PathLike, ids: list[str]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{i}\n" for i in ids))


def write_json(path: str | os.PathLike, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
