"""The figures of a coco14 rehearsal (wsss_dev.bench.rehearse): the measured disk peak and each job's
peak memory and time, projected to the full run (82,081 train + 40,137 val images), and the `jobs`
sizes of config/coco14.yaml derived from them.

Projection rules (docs/experiments.md, "MS-COCO at scale, rehearsed"):
- disk: at every sample, each kind of file's count scaled to the full run's count, times its bytes per
  file (footprint bracket or measured, allocated); archives and extracted folders by the real archive
  size over the synthetic one; the peak is the largest sample. "maps kept" replaces the map files
  alive at a sample by all the map files written so far (nothing deletes them).
- time: a job's wall time per image (x the processes of its pool it could use: at most its threads
  here and its images) x its images at full size / its threads at full size (config/coco14.yaml);
  an upper bound: the fixed start-up is scaled with the images.
- memory: a job that holds a whole split or list (prepare, conversion's JSON, merges, sums,
  intervals) grows linearly with its images above the least RSS of any job (the bare interpreter):
  an upper bound, not projected from a list MAX_FACTOR times smaller than the full one; a job whose
  pool streams its images grows with its processes: its RSS (at least a per-image job's,
  make_pseudo_masks' median) x its threads at full size / here. Downloads are not projected.
- the machine: wall times on a shared 2-core VM are inflated by the other jobs' load.
- sizes: mem_mb = 1.5 x projected peak, rounded up to 500 MB; runtime = 1.5 x projected time, rounded
  up to 5 min (at least 10).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from wsss.core.io import atomic_path
from wsss.data.sources.coco14.prepare import ARCHIVES
from wsss_dev.bench.footprint import BLOCK, TRAIN, VAL

FOOTPRINT = Path(__file__).resolve().parents[3] / "docs/results/coco_footprint.csv"
ARCHIVE_FILES = {"train2014": 82_783, "val2014": 40_504}  # images in the real archives (annotated or not)
DEEPLAB_METHODS = 3  # config/coco14.yaml's deeplab.methods (cam, eps, gt); the rehearsal trains one
# Rules whose jobs hold a whole split or list in memory; the other projected rules stream their images.
HOLDS_ALL = {"prepare_dataset", "convert_coco14", "merge_coco14_masks", "merge_pseudo_masks", "merge_refine_crf",
             "evaluate_miou", "table_intervals", "cam_threshold_sweep", "table_miou"}
STAND_INS = {"train_classifier", "infer_cams", "train_segmentation", "infer_segmentation"}
MAX_FACTOR = 1000  # a whole-list job of the CRF's and DeepLab's small subsets projects no memory
SAMPLED_S = 2.0  # jobs shorter than this have no memory figure
NETWORK = {"download_coco14"}  # loopback here: its time says nothing of the image host's
# Rules whose script spreads its images over a pool of `threads` processes.
POOLED = {"convert_coco14", "prepare_dataset", "make_pseudo_masks", "refine_crf", "cam_threshold_sweep_shard",
          "evaluate_shard", "import_precomputed_saliency"}
REPO = Path(__file__).resolve().parents[3]


def _allocated(col: pd.Series) -> float:
    return float(np.mean([math.ceil(v / BLOCK) * BLOCK for v in col]))


def per_file(variant: str) -> dict[str, float]:
    """Allocated bytes of one file of each classifier-dependent kind, in the footprint bracket `variant`."""
    fp = pd.read_csv(FOOTPRINT)
    cam_pm, eps_pm = _allocated(fp[f"{variant}_cam_pseudo_png"]), _allocated(fp[f"{variant}_eps_pseudo_png"])
    cam_crf, eps_crf = _allocated(fp["cam_crf_png"]), _allocated(fp["eps_crf_png"])  # CRF measured on smooth
    maps = {c: _allocated(fp[f"{variant}_{c}_uint8_npz"]) for c in ("cam", "eps")}
    return {"maps_cam": maps["cam"], "maps_eps": maps["eps"],
            "pseudo": (2 * cam_pm + eps_pm) / 3, "crf": (2 * cam_crf + eps_crf) / 3, "pred": (eps_pm + eps_crf) / 2}


def scales(f: dict) -> dict[str, tuple[float, float]]:
    """kind -> (files here, files in the full run) of the kinds projected by count."""
    return {"maps_cam": (f["train"], TRAIN), "maps_eps": (f["train"], TRAIN), "pseudo": (3 * f["train"], 3 * TRAIN),
            "crf": (3 * f["crf_train"], 3 * TRAIN), "pred": (2 * f["crf_val"], 2 * DEEPLAB_METHODS * VAL),
            "label": (f["images"], TRAIN + VAL), "saliency": (f["train"], TRAIN)}


def project_disk(samples: pd.DataFrame, f: dict, variant: str, keep_maps: bool) -> pd.Series:
    """Projected bytes of the intermediates at every sample."""
    sizes, total = per_file(variant), 0.0
    for kind, (here, full) in scales(f).items():
        files = samples[f"{kind}_files"]
        if keep_maps and kind.startswith("maps"):
            files = files.cummax()
        if kind in sizes:
            total = total + files * full / here * sizes[kind]
        else:
            total = total + samples[f"{kind}_bytes"] * full / here
    evaluated = max(TRAIN / f["crf_train"], VAL / f["crf_val"])  # per-image counts of the scored subsets
    return total + samples["eval_bytes"] * evaluated + samples["other_bytes"]


def bound_at_completion(samples: pd.DataFrame, f: dict, variant: str, keep_maps: bool) -> float:
    """Projected bytes of the intermediates once every file of the run is written: every kind at its full
    count, the map files at the most seen at once (keep_maps false) or all of them (true). A bound that a
    rehearsal stopped early gives too: its kinds' bytes per file and its map window are already measured."""
    sizes, total = per_file(variant), 0.0
    for kind, (here, full) in scales(f).items():
        files = samples[f"{kind}_files"]
        if kind.startswith("maps"):
            alive = full if keep_maps else files.max() * full / here
            total += alive * sizes[kind]
        elif kind in sizes:
            total += full * sizes[kind]
        else:
            last = samples[files > 0].iloc[-1] if (files > 0).any() else None
            total += 0.0 if last is None else last[f"{kind}_bytes"] / last[f"{kind}_files"] * full
    evaluated = max(TRAIN / f["crf_train"], VAL / f["crf_val"])
    return total + samples["eval_bytes"].max() * evaluated + samples["other_bytes"].max()


def project_raw(samples: pd.DataFrame, f: dict) -> pd.Series:
    """Projected bytes of the archives and their extracted folders at every sample: each one's content
    by the real archive's size over the synthetic one's, plus the allocation slack of its files (half a
    block a file, expected) at the real file count; a half-extracted folder as the largest archive."""
    total = 0.0
    for key, archive in ARCHIVES.items():
        ratio = archive.size / f["archive_bytes"][key]
        total = total + samples[f"archive_{key}_bytes"] * ratio
        files = samples[f"raw_{key}_files"]
        content = samples[f"raw_{key}_bytes"] - files * BLOCK / 2
        total = total + content * ratio + files * ARCHIVE_FILES.get(key, 1) / max(files.max(), 1) * BLOCK / 2
    return total + samples["raw_partial_bytes"] * max(a.size / f["archive_bytes"][k] for k, a in ARCHIVES.items())


def raw_worst_moment(samples: pd.DataFrame, f: dict) -> tuple[float, str]:
    """The projected raw data at the worst moment of the download chain (coco14.smk: val2014.zip waits for
    train2014's checked folder), from the folders' and archives' projected sizes rather than a sample: at
    full size an extraction lasts minutes, here a second, so a sample rarely falls on it."""
    folder = {}
    for key, archive in ARCHIVES.items():
        ratio = archive.size / f["archive_bytes"][key]
        files = samples[f"raw_{key}_files"]
        content = (samples[f"raw_{key}_bytes"] - files * BLOCK / 2) * ratio
        folder[key] = float((content + files * ARCHIVE_FILES.get(key, 1) / max(files.max(), 1) * BLOCK / 2).max())
    size = {key: a.size for key, a in ARCHIVES.items()}
    moments = {"train2014.zip beside its folder, the annotations' archive and folder too":
               size["train2014"] + folder["train2014"] + size["annotations"] + folder["annotations"],
               "val2014.zip beside its folder, train2014's folder and the instances files":
               folder["train2014"] + size["val2014"] + folder["val2014"] + folder["annotations"]}
    worst = max(moments, key=moments.get)
    return moments[worst], worst


def job_images(rule: str, name: str, f: dict) -> tuple[float, float] | None:
    """(images here, images at full size) of one job, from its rule and benchmark file name."""
    per = {"train": (f["train"], TRAIN), "val": (f["val"], VAL), "crf": (f["crf_train"], TRAIN),
           "deeplab": (f["crf_val"], VAL), "all": (f["images"], TRAIN + VAL)}
    shard = {k: (a / f["shards"], b / f["shards"]) for k, (a, b) in per.items()}
    if rule in ("download_coco14", "extract_coco14"):
        key = next(k for k, a in ARCHIVES.items() if name.startswith(a.member) or name == Path(a.url).name)
        return f["archive_bytes"][key], ARCHIVES[key].size
    if rule == "convert_coco14":
        return shard["train" if name.startswith("train") else "val"]
    if rule in ("prepare_dataset", "merge_coco14_masks"):
        return per["all"]
    if rule in ("import_precomputed_saliency", "merge_pseudo_masks"):
        return per["train"]
    if rule in ("infer_cams", "make_pseudo_masks"):
        return shard["train"]
    if rule in ("refine_crf", "cam_threshold_sweep_shard"):
        return shard["crf"]
    if rule == "merge_refine_crf":
        return per["crf"]
    if rule == "evaluate_shard":
        return shard["deeplab" if name.startswith("deeplab") else "crf"]
    if rule in ("evaluate_miou", "table_intervals"):
        return per["deeplab" if name.startswith("deeplab") else "crf"]
    return None


def threads(rule: str, cores: int) -> tuple[int, int]:
    """(processes here, processes at full size) of a rule whose script runs a pool of `threads`
    processes (config/coco14.yaml's `jobs`); (1, 1) for the others."""
    from wsss.config.load import load_config
    from wsss.config.settings import job_size

    if rule not in POOLED:
        return 1, 1
    full = job_size(load_config(REPO / "config/coco14.yaml"), rule)["threads"]
    return min(full, cores), full


def jobs_table(workdir: Path, f: dict) -> pd.DataFrame:
    """One row per rule: jobs, wall time and peak RSS here (the largest job), projected to full size.
    A pooled job's time per image is its time x the processes it could use (at most its images) over its
    images; at full size it has config/coco14.yaml's threads."""
    rows = []
    for tsv in sorted((workdir / "benchmarks").glob("*/*.tsv")):
        bench = pd.read_csv(tsv, sep="\t").iloc[0]
        rule, name = tsv.parent.name, tsv.stem
        scale = job_images(rule, name, f)
        here, full = threads(rule, f["cores"])
        factor = None
        if scale is not None:
            factor = min(here, max(1.0, scale[0])) / scale[0] * scale[1] / full
        rows.append({"rule": rule, "job": name, "s": float(bench["s"]), "max_rss_mb": float(bench["max_rss"]),
                     "images": None if scale is None else scale[0], "time_factor": factor,
                     "factor": None if scale is None else scale[1] / scale[0], "threads": full})
    jobs = pd.DataFrame(rows)
    # the interpreter and the libraries of a per-image job: what does not grow with the images
    # Snakemake samples a job's memory about once a second: a shorter job's figure is its launcher's
    jobs.loc[jobs.s < SAMPLED_S, "max_rss_mb"] = np.nan
    streaming = jobs.max_rss_mb[jobs.rule == "make_pseudo_masks"].dropna()
    bare = float(jobs.max_rss_mb.min())  # the interpreter alone: the least any job held
    base = float(streaming.median()) if len(streaming) else bare
    out = []
    for rule, group in jobs.groupby("rule", sort=False):
        row = {"rule": rule, "jobs": len(group), "s_max": round(group.s.max(), 1),
               "rss_mb_max": group.max_rss_mb.max().round(), "stand_in": rule in STAND_INS}
        if group.factor.notna().all() and rule not in STAND_INS | NETWORK:
            factor = float(group.factor.max())
            rss = float(group.max_rss_mb.max()) if group.max_rss_mb.notna().any() else bare
            here, full = threads(rule, f["cores"])
            images = float(group.images.max())
            if rule in HOLDS_ALL and factor > MAX_FACTOR:  # the interpreter dominates: no growth to measure
                mem = float("nan")
            elif rule in HOLDS_ALL:  # all it holds above the bare interpreter grows with the images (an upper bound)
                mem = bare + (max(rss, bare) - bare) * factor
            else:  # a pool's workers each hold one image: their memory grows with the processes, not the images
                mem = max(rss, base) * full / here
            minutes = float((group.s * group.time_factor).max()) / 60
            row |= {"images_per_job": round(images, 1), "factor": round(factor, 1),
                    "projected_min": round(minutes, 1), "projected_rss_mb": None if math.isnan(mem) else round(mem),
                    "threads": int(group.threads.max()),
                    "mem_mb": None if math.isnan(mem) else int(math.ceil(1.5 * mem / 500) * 500),
                    "runtime": int(max(10, math.ceil(1.5 * minutes / 5) * 5))}
        out.append(row)
    return pd.DataFrame(out)


# The CPU stages whose `jobs` sizes in config/coco14.yaml come from the rehearsal.
SIZED = ["extract_coco14", "convert_coco14", "merge_coco14_masks", "prepare_dataset", "make_pseudo_masks",
         "merge_pseudo_masks", "cam_threshold_sweep_shard", "refine_crf", "merge_refine_crf", "evaluate_shard",
         "evaluate_miou"]


def jobs_fragment(jobs: pd.DataFrame) -> str:
    """config/coco14.yaml's `jobs` lines for the sized rules whose size differs from the schema's."""
    from wsss.config.settings import job_size
    from wsss.core.schema import section_defaults

    defaults = {"jobs": section_defaults("jobs")}
    lines = []
    for rule in SIZED:
        row = jobs[jobs.rule == rule]
        if row.empty or pd.isna(row.mem_mb.iloc[0]) or pd.isna(row.runtime.iloc[0]):
            continue
        row = row.iloc[0]
        size = {"threads": int(row.threads), "mem_mb": int(row.mem_mb), "runtime": int(row.runtime)}
        if size != job_size(defaults, rule):
            sized = ", ".join(f"{k}: {v}" for k, v in size.items())
            lines.append(f"  {rule}: {{{sized}}}  # rehearsal: {row.projected_rss_mb:.0f} MB, "
                         f"{row.projected_min:.0f} min at full size")
    return "\n".join(lines) + "\n"


def report(workdir: Path, f: dict, samples: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Write <out> (figures), <out>.jobs.csv and <out>.disk.csv; returns the figures."""
    samples = samples.fillna(0)
    raw_cols = [c for c in samples if c.endswith("_bytes") and c.startswith(("archive_", "raw_"))]
    inter_cols = [c for c in samples if c.endswith("_bytes") and c not in raw_cols]
    samples["raw_measured"] = samples[raw_cols].sum(axis=1)
    samples["intermediates_measured"] = samples[inter_cols].sum(axis=1)
    samples["raw_projected"] = project_raw(samples, f)
    worst, when = raw_worst_moment(samples, f)
    figures = [("images", f["images"], TRAIN + VAL, "count", f"{f['train']} train + {f['val']} val; CRF and "
                f"pseudo tables on {f['crf_train']} train ids, DeepLab on {f['crf_val']} val ids"),
               ("wall time", f["data_s"] + f["run_s"], None, "s",
                f"data stages {f['data_s']} s, rest {f['run_s']} s on {f['cores']} cores; archives built in "
                f"{f['build_s']} s"),
               ("raw data, peak", samples.raw_measured.max(), samples.raw_projected.max(), "GB",
                "archives + extracted folders at the worst sample"),
               ("raw data, worst moment", None, worst, "GB", when + " (computed: a sample rarely falls on it)"),
               ("raw data, after extraction", samples.raw_measured.iloc[-1], samples.raw_projected.iloc[-1], "GB",
                "the extracted folders and their manifests (each archive deleted once checked)")]
    for variant in ("smooth", "noisy"):
        for keep in (False, True):
            col = f"intermediates_{variant}_{'kept' if keep else 'deleted'}"
            samples[col] = project_disk(samples, f, variant, keep)
            measured = samples.intermediates_measured.max() if keep == f["keep_maps"] else None
            if not keep:  # a kept map is never deleted: its peak is at completion, below
                figures.append((f"intermediates peak, {variant} maps, keep_maps false", measured, samples[col].max(),
                                "GB", f"at t = {samples.t_s[samples[col].idxmax()]} s of the run"))
            figures.append((f"intermediates at completion, {variant} maps, keep_maps {str(keep).lower()}", None,
                            bound_at_completion(samples, f, variant, keep), "GB",
                            "every file written; map files: " + ("all" if keep else "the most alive at once")))
    for kind in ("cam", "eps"):
        frac = samples[f"maps_{kind}_files"].max() / f["train"]
        figures.append((f"map files of {kind} alive at once, most", samples[f"maps_{kind}_files"].max(),
                        round(frac * TRAIN), "files", f"{frac:.1%} of the train images ({f['shards']} shards)"))
    table = pd.DataFrame(figures, columns=["figure", "measured", "projected", "unit", "note"])
    for col in ("measured", "projected"):
        table[col] = [None if v is None else (round(v / 1e9, 2) if u == "GB" else v)
                      for v, u in zip(table[col], table.unit)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    jobs = jobs_table(workdir, f)
    with atomic_path(out.with_suffix(".jobs.csv")) as tmp:
        jobs.to_csv(tmp, index=False)
    print(jobs.to_string(index=False))
    print("config/coco14.yaml jobs from the rehearsal:\n" + jobs_fragment(jobs))
    with atomic_path(out.with_suffix(".disk.csv")) as tmp:
        samples.to_csv(tmp, index=False)
    with atomic_path(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(f, indent=1) + "\n")
    print(table.to_string(index=False))
    return table


def markdown(out: Path) -> str:
    """The rehearsal's figures and job sizes as the Markdown tables docs/experiments.md quotes."""
    figures = pd.read_csv(out)
    jobs = pd.read_csv(out.with_suffix(".jobs.csv"))
    lines = ["| figure | measured | projected to 122,218 images | unit | note |", "|---|---|---|---|---|"]
    lines += [f"| {r.figure} | {'' if pd.isna(r.measured) else r.measured} | "
              f"{'' if pd.isna(r.projected) else r.projected} | {r.unit} | {r.note} |" for r in figures.itertuples()]
    lines += ["", "| rule | jobs | longest job here (s) | its RSS here (MB) | images a job here | projected time (min) "
              "| projected RSS (MB) | size (threads, mem_mb, runtime) |", "|---|---|---|---|---|---|---|---|"]
    for r in jobs.itertuples():
        size = "stand-in" if r.stand_in else ("" if pd.isna(r.mem_mb) else
                                              f"{int(r.threads)}, {int(r.mem_mb)}, {int(r.runtime)}")
        lines.append(f"| {r.rule} | {r.jobs} | {r.s_max} | {'' if pd.isna(r.rss_mb_max) else int(r.rss_mb_max)} | "
                     f"{'' if pd.isna(getattr(r, 'images_per_job', None)) else r.images_per_job} | "
                     f"{'' if pd.isna(getattr(r, 'projected_min', None)) else r.projected_min} | "
                     f"{'' if pd.isna(getattr(r, 'projected_rss_mb', None)) else int(r.projected_rss_mb)} | {size} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    print(markdown(Path(sys.argv[1])))
