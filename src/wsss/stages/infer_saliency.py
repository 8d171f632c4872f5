"""Saliency maps for the WSSS images: PFAN inference, precomputed maps, and held-out evaluation.

Every map is an 8-bit grey PNG `<id>.png` at its image's size (the contract of
`results/saliency/maps`), whichever way it was made.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from wsss.core.device import place_model, resolve_device
from wsss.core.hints import rerun_hint
from wsss.core.images import normalize
from wsss.core.io import (
    BadInputError,
    atomic_dir,
    atomic_path,
    link_or_copy,
    read_gray_png,
    read_id_list,
    read_image,
    write_gray_png,
)
from wsss.core.model_files import load_model
from wsss.core.parallel import chunks, map_chunks
from wsss.core.sharding import shard_ids
from wsss.data.duts import IMAGE_DIR, MASK_DIR, list_duts, resize_image, split_duts
from wsss.data.released import extract_id_folder
from wsss.data.saliency_maps import find_map, read_saliency_map_scaled
from wsss.metrics.saliency import SaliencyScores, centre_prior
from wsss.models.pfan import PFAN, build_pfan

log = logging.getLogger(__name__)


def load_pfan(path: str | os.PathLike, device: torch.device) -> tuple[PFAN, int]:
    """(model in eval mode on `device`, input size) from a file written by `train_saliency`."""
    obj = load_model(path)
    cfg = dict(obj.get("config", {}).get("model", {}))
    if "input_size" not in cfg:
        raise BadInputError(f"{path}: model file has no config.model.input_size; it was not written by "
                            "train_saliency — re-train it, or re-save it with its PFAN config")
    size = int(cfg.pop("input_size"))
    cfg["backbone_weights"] = None  # the trained weights below replace any initialisation
    model = build_pfan(cfg)
    try:
        model.load_state_dict(obj["model"])
    except RuntimeError as err:
        raise BadInputError(f"{path}: weights do not match the PFAN config stored with them "
                            f"({str(err).splitlines()[0]}); re-run train_saliency") from err
    return place_model(model, device).eval(), size


@torch.inference_mode()
def predict(model: PFAN, images: list[np.ndarray], size: int, device: torch.device) -> list[np.ndarray]:
    """Saliency in [0, 1] for each (H, W, 3) uint8 image, at that image's own size."""
    batch = torch.stack([normalize(resize_image(im, size)) for im in images]).to(device)
    prob = torch.sigmoid(model(batch).float())
    out = []
    for p, im in zip(prob, images):
        p = F.interpolate(p[None], size=im.shape[:2], mode="bilinear", align_corners=False)[0, 0]
        out.append(p.clamp_(0, 1).cpu().numpy())
    return out


def _union_ids(id_lists: list[str | os.PathLike]) -> list[str]:
    return sorted({i for path in id_lists for i in read_id_list(path)})


def _batches(items: list, n: int):
    for k in range(0, len(items), n):
        yield items[k:k + n]


def infer_saliency(model_path: str | os.PathLike, images_dir: str | os.PathLike, id_lists: list,
                   out_dir: str | os.PathLike, *, shard: int = 0, num_shards: int = 1, device: str = "auto",
                   batch_size: int = 32) -> int:
    """Write `<out_dir>/<id>.png` for this shard of the ids in `id_lists`; returns the count."""
    from tqdm import tqdm

    dev = resolve_device(device)
    model, size = load_pfan(model_path, dev)
    ids = shard_ids(_union_ids(id_lists), shard, num_shards)
    log.info("PFAN inference: %d images (shard %d/%d) at %d px on %s", len(ids), shard, num_shards, size, dev)
    with atomic_dir(out_dir) as tmp:
        for chunk in tqdm(list(_batches(ids, batch_size)), desc="saliency", mininterval=2.0):
            images = [read_image(Path(images_dir) / f"{i}.jpg") for i in chunk]
            for i, sal in zip(chunk, predict(model, images, size, dev)):
                write_gray_png(tmp / f"{i}.png", sal)
    return len(ids)


def _import_one(args) -> tuple[str, str | None, bool, tuple[int, int] | None]:
    """Check and bring in one precomputed map: (id, problem or None, resized, (stored peak, full
    scale) of an integer map or None)."""
    image_id, found, image, out_dir, resize, binary = args
    if len(found) > 1:
        return image_id, (f"{found[0]}: {len(found)} maps for id {image_id} "
                          f"({', '.join(p.name for p in found)}); keep one"), False, None
    src = found[0]
    try:
        with Image.open(image) as im:
            size = im.size
    except OSError as err:
        return image_id, f"{image}: cannot read the image ({err}); {rerun_hint(image)}", False, None
    try:
        # full decode and format rule, even to link
        sal, stored = read_saliency_map_scaled(src, size, resize=resize, binary=binary)
        if src.suffix.lower() == ".npy":
            mode, msize = None, np.load(src, mmap_mode="r").shape[::-1]
        else:
            with Image.open(src) as m:
                mode, msize = m.mode, m.size
    except BadInputError as err:
        return image_id, str(err), False, None
    dest = Path(out_dir) / f"{image_id}.png"
    if src.suffix.lower() == ".png" and mode == "L" and msize == size and not binary:
        # already the contract of results/saliency/maps: link, do not re-encode
        link_or_copy(src, dest)
    else:
        write_gray_png(dest, sal)
    return image_id, None, tuple(msize) != tuple(size), stored


def _check_integer_range(src_dir: Path, stored: list[tuple[int, int]], binary: bool) -> None:
    """A set of integer maps that never exceeds 1 is 0/1 masks: by the value / scale rule they
    would read as saliency <= 1/255, i.e. nothing salient. Rejected unless saliency.binary_maps."""
    if binary or not stored:
        return
    peak = max(p for p, _ in stored)
    if peak > 1:
        return
    scales = sorted({s for _, s in stored})
    bits = " or ".join(f"{'8' if s == 255 else '16'}-bit (0..{s})" for s in scales)
    raise BadInputError(
        f"{src_dir}: all {len(stored)} integer saliency maps ({bits}) store values in 0..{peak} only, so the "
        f"format's rule (value / {scales[0]}) would make every map at most {peak / scales[0]:.4f}: they look "
        "like 0/1 masks exported without scaling, and EPS would train as if nothing were salient. Fix: "
        f"re-export them at full scale (0 and {scales[-1]}), or set saliency.binary_maps: true to read them "
        "as 0/1 masks; nothing was written")


def _import_chunk(jobs: list) -> list:
    return [_import_one(j) for j in jobs]


def import_precomputed_saliency(src_dir: str | os.PathLike, images_dir: str | os.PathLike, id_lists: list,
                                out_dir: str | os.PathLike, *, resize_mismatched: bool = False, processes: int = 1,
                                max_listed: int = 10, optional_lists: list = (), binary_maps: bool = False) -> int:
    """Bring user-supplied maps `<src_dir>/<id>.<png|npy|tif|...>` into `out_dir` (8-bit grey PNG, image size).

    Every id must have exactly one map, readable by `wsss.data.saliency_maps.read_saliency_map` (its
    docstring states the conversion of each format). A map of another size than its image is an
    error unless `resize_mismatched` (config saliency.resize_mismatched; then bilinear, logged).
    Grey 8-bit PNGs that fit are hard-linked. All maps are checked (in `processes` processes) and
    every problem is reported in one BadInputError; nothing is written then. Ids of
    `optional_lists` (e.g. val, which only the figures read) are imported where a map exists.
    A set of integer maps whose stored values never exceed 1 is rejected (0/1 masks read as
    value / 255), unless `binary_maps` (config saliency.binary_maps) reads them as 0/1.
    Returns the number of resized maps.
    """
    src_dir, images_dir = Path(src_dir), Path(images_dir)
    ids = _union_ids(id_lists)
    required = set(ids)
    optional = [i for i in _union_ids(optional_lists) if i not in required] if optional_lists else []
    if not src_dir.is_dir():
        raise BadInputError(f"{src_dir}: saliency.precomputed_dir does not exist; point it at a folder of "
                            "<id>.png saliency maps, or set saliency.source: pfan")
    found = {i: find_map(src_dir, i) for i in ids + optional}
    missing = [i for i in ids if not found[i]]
    skipped = [i for i in optional if not found[i]]
    if skipped:
        log.warning("%d of %d optional ids (e.g. %s) have no map in %s: left out (figures show them blank)",
                    len(skipped), len(optional), skipped[0], src_dir)
    ids = ids + [i for i in optional if found[i]]
    if missing:
        raise BadInputError(f"{src_dir / (missing[0] + '.png')}: no saliency map for image id {missing[0]} "
                            f"({len(missing)} of {len(ids)} ids missing, e.g. {', '.join(missing[:max_listed])}); "
                            "add the maps, or set saliency.source: pfan to compute them")
    with atomic_dir(out_dir) as tmp:
        jobs = [(i, found[i], images_dir / f"{i}.jpg", tmp, resize_mismatched, binary_maps) for i in ids]
        results = [r for chunk in map_chunks(_import_chunk, chunks(jobs, processes), processes) for r in chunk]
        bad = [problem for _, problem, _, _ in results if problem]
        if bad:
            listed = bad[:max_listed]
            more = f"\n  ... and {len(bad) - len(listed)} more" if len(bad) > len(listed) else ""
            raise BadInputError(f"{src_dir}: {len(bad)} of {len(ids)} precomputed saliency maps are unusable; "
                                f"nothing was written. First {len(listed)}:\n  " + "\n  ".join(listed) + more
                                + "\nFix: replace (or re-export) the listed maps in saliency.precomputed_dir, "
                                "then rerun.")
        _check_integer_range(src_dir, [stored for *_, stored in results if stored is not None], binary_maps)
    resized = [i for i, _, r, _ in results if r]
    for i in resized[:5]:
        log.warning("%s: map size differs from its image: resized (bilinear, saliency.resize_mismatched)",
                    found[i][0])
    if resized:
        log.warning("%d of %d precomputed maps did not match their image size and were resized", len(resized),
                    len(ids))
    log.info("precomputed saliency: %d maps from %s", len(ids), src_dir)
    return len(resized)


def extract_released_saliency(archive: str | os.PathLike, ids_file: str | os.PathLike, out_dir: str | os.PathLike,
                              max_listed: int = 10) -> int:
    """The authors' saliency-map archive (zip or tar) → `out_dir`, the folder of its `<id>.png` maps
    (wsss.data.released); every id of `ids_file` must be there. Returns the number of maps."""
    ids = read_id_list(ids_file)
    n, _ = extract_id_folder(archive, ids, out_dir, "map", "Re-download it, or use saliency.source: pfan", max_listed)
    log.info("released saliency: %d maps of %d ids from %s", n, len(ids), archive)
    return len(ids)


def evaluate_saliency(model_path: str | os.PathLike, duts_dir: str | os.PathLike, out_csv: str | os.PathLike,
                      *, holdout: float, seed: int, centre_sigma: float = 0.25, device: str = "auto",
                      batch_size: int = 32) -> list[dict]:
    """MAE and max F of PFAN and of a centre prior on the held-out split; written to `out_csv`."""
    dev = resolve_device(device)
    model, size = load_pfan(model_path, dev)
    _, held = split_duts(list_duts(duts_dir), holdout, seed)
    scores = {"pfan": SaliencyScores(), "centre_prior": SaliencyScores()}
    for chunk in _batches(held, batch_size):
        images = [read_image(Path(duts_dir) / IMAGE_DIR / f"{i}.jpg") for i in chunk]
        for i, im, sal in zip(chunk, images, predict(model, images, size, dev)):
            gt = read_gray_png(Path(duts_dir) / MASK_DIR / f"{i}.png")
            scores["pfan"].add(sal, gt)
            scores["centre_prior"].add(centre_prior(*gt.shape, sigma=centre_sigma), gt)
    rows = [{"model": name, **s.result()} for name, s in scores.items()]
    with atomic_path(out_csv) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["model", "mae", "max_f", "best_threshold", "n_images"])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    for r in rows:
        log.info("%s: MAE %.4f, max F %.4f (threshold %.2f) on %d held-out images", r["model"], r["mae"],
                 r["max_f"], r["best_threshold"], r["n_images"])
    return rows
