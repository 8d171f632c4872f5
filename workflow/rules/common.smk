# Helpers shared by all the .smk files (paths, id lists, input functions).
# NB for editors: snakemake --lint takes the word r-u-l-e, a space, then any text and a colon on one line, as a rule definition. Avoid that in comments of this file.
# Rule files use these names; the wsss package never builds paths itself.
import os

ROOT = config["dataset"]["root"]
SOURCE = config["dataset"]["source"]
DOWNLOADS = config["dataset"]["downloads"]
SHARDS = list(range(config["shards"]))
ENV = "../../envs/wsss.yaml"
# GPUs a GPU-capable job asks for: none when the config pins the CPU (device: cpu), so such a run
# neither waits for GPU tokens nor asks SLURM for GPUs; otherwise one (gpu=N>1 via set-resources).
GPU = 0 if str(config["device"]).startswith("cpu") else 1

# The prepared dataset: the one layout every stage after prepare_dataset reads.
PREP = f"{ROOT}/prepared"


def prep(name):
    """A path inside the prepared dataset (for params: the rule's input is PREP itself)."""
    sub = {
        "images": "JPEGImages",
        "masks": "SegmentationClassAug",
        "boundaries": "boundaries",
        "labels": "labels.csv",
        "classes": "classes.txt",
        "train_aug": "lists/train_aug.txt",
        "train": "lists/train.txt",
        "val": "lists/val.txt",
    }[name]
    return f"{PREP}/{sub}"


# Raw layout folders (outputs of synthesize_dataset or of the extract rules).
RAW_VOC = f"{ROOT}/VOCdevkit"
RAW_SBD = f"{ROOT}/benchmark_RELEASE"
RAW_DUTS = f"{ROOT}/DUTS-TR"
RAW_CONTEXT = f"{ROOT}/context"


def final_targets():
    """What `snakemake` with no target builds: every stage that exists, to its tables."""
    targets = [PREP]
    targets += STAGE_TARGETS
    return targets


# Stage rule files append their final outputs here (evaluated when `rule all` is parsed,
# after every include).
STAGE_TARGETS = []


# ---- evaluation (stage: evaluation) --------------------------------------------------------
# Predictions are scored per (stage, method): pseudo/pseudo_crf = the pseudo-masks (before/after
# the dense CRF) on evaluation.pseudo_mask_split; deeplab/deeplab_crf = DeepLab's predictions on
# evaluation.segmentation_split. Each table lists its stages in evaluation.tables.
EVAL = config["evaluation"]
EVAL_STAGE_DIRS = {
    "pseudo": "results/pseudo_masks/{method}",
    "pseudo_crf": "results/pseudo_masks_crf/{method}",
    "deeplab": "results/deeplab/{method}/pred",
    "deeplab_crf": "results/deeplab/{method}/pred_crf",
}


def eval_methods(stage):
    """The methods that have predictions at `stage`: pseudo-mask sources, or DeepLab's training sources."""
    if stage.startswith("pseudo"):
        return config["methods"]
    # No deeplab section (a config without the segmentation stage): no DeepLab rows.
    return config.get("deeplab", {}).get("methods", [])


def eval_pred_dir(wildcards):
    """Input function: the prediction folder of one (stage, method)."""
    return EVAL_STAGE_DIRS[wildcards.stage].format(method=wildcards.method)


def eval_ids(wildcards):
    """Params function: the id list a (stage, method) is scored on."""
    split = EVAL["pseudo_mask_split"] if wildcards.stage.startswith("pseudo") else EVAL["segmentation_split"]
    return prep(split)


def eval_results(kind):
    """The per-(stage, method) result files one table gathers (kind: miou, boundary, confusion)."""
    return [
        f"results/eval/{stage}/{method}/{kind}.json"
        for stage in EVAL["tables"][kind]
        for method in eval_methods(stage)
    ]


def eval_grid_columns(split):
    """(titles, folders) of the qualitative grid: `pseudo` (train split) or `deeplab` (val split)."""
    if split == "pseudo":
        cols = [("CAM", "pseudo", "cam"), ("EPS", "pseudo", "eps"), ("EPS + CRF", "pseudo_crf", "eps")]
        cols = [c for c in cols if c[2] in config["methods"]]
    else:
        cols = [(f"DeepLab ({m})", "deeplab", m) for m in eval_methods("deeplab")]
        if "eps" in eval_methods("deeplab"):
            cols.append(("DeepLab (eps) + CRF", "deeplab_crf", "eps"))
    return [t for t, _, _ in cols], [EVAL_STAGE_DIRS[s].format(method=m) for _, s, m in cols]


def eval_grid_inputs(wildcards):
    """Input function of figure_qualitative: the prediction folders drawn as columns."""
    return eval_grid_columns(wildcards.split)[1]


def eval_grid_params(wildcards):
    """Params of figure_qualitative: column titles, the split's id list, requested ids, title."""
    pseudo = wildcards.split == "pseudo"
    return {
        "titles": eval_grid_columns(wildcards.split)[0],
        "ids_file": prep(EVAL["pseudo_mask_split"] if pseudo else EVAL["segmentation_split"]),
        "ids": EVAL["figure_ids_train"] if pseudo else EVAL["figure_ids_val"],
        "title": "pseudo-masks (train split)" if pseudo else "DeepLab predictions (val split)",
    }


def eval_loss_csvs():
    """{label: loss CSV} of every training run in the DAG (outputs of the training rules)."""
    runs = {}
    sal = config.get("saliency", {})
    if sal.get("source") == "pfan" and not sal.get("checkpoint"):
        runs["PFAN (saliency)"] = "results/saliency/pfan/loss.csv"
    for m in ("cam", "eps"):
        if any(method.startswith(m) for method in config["methods"]):
            runs[f"classifier ({m})"] = f"results/classifier/{m}/loss.csv"
    for m in eval_methods("deeplab"):
        runs[f"DeepLab ({m})"] = f"results/deeplab/{m}/loss.csv"
    return runs


# ---- segmentation (stage: segmentation) ----------------------------------------------------
# Dense CRF on the pseudo-masks (sharded), DeepLab-v2 trained on the pseudo-masks of a method
# (or on the ground truth: method `gt`, an upper bound) and its predictions on val.
CRF = config["crf"]
DEEPLAB = config["deeplab"]
# Localization maps that a `probs` CRF unary reads for each pseudo-mask source (cam_sal has no
# maps of its own: its CAMs are cam's, so with `probs` the saliency gating is not part of the unary).
CRF_MAPS = {"cam": "results/cams/cam", "cam_sal": "results/cams/cam", "eps": "results/cams/eps"}


def crf_maps_input(wildcards):
    """Input function of refine_crf: the maps folder when crf.unary is `probs`, else nothing."""
    return CRF_MAPS[wildcards.method] if crf_unary(wildcards.method) == "probs" else []


def crf_unary(method):
    """crf.unary for one pseudo-mask source: one value for all, or a method -> unary mapping."""
    unary = CRF["unary"]
    return unary if isinstance(unary, str) else unary.get(method, "labels")


def crf_params(wildcards):
    """Params of refine_crf: the crf section with this method's unary resolved."""
    return {**CRF, "unary": crf_unary(wildcards.method)}


def crf_shards(wildcards):
    """Input function of merge_refine_crf: every shard folder of one method."""
    return [f"results/shards/pseudo_masks_crf/{wildcards.method}/{s}" for s in SHARDS]


def seg_masks_dir(method):
    """The masks DeepLab trains on: the prepared ground truth for `gt`, else the pseudo-masks
    (CRF-refined ones when deeplab.train_on_crf)."""
    if method == "gt":
        return prep("masks")
    return f"results/pseudo_masks{'_crf' if DEEPLAB['train_on_crf'] else ''}/{method}"


def seg_masks_input(wildcards):
    """Input function of train_segmentation (for `gt` the masks are inside PREP, already an input)."""
    return [] if wildcards.method == "gt" else seg_masks_dir(wildcards.method)


STAGE_TARGETS += [
    f"results/deeplab/{m}/{out}" for m in DEEPLAB["methods"] for out in ("pred", "pred_crf", "loss.csv")
]


# ---- saliency (stage: saliency) --------------------------------------------------------------
# Saliency maps for every train_aug + val image in results/saliency/maps: PFAN trained on the
# DUTS-layout set (or a user-supplied PFAN model file), or a folder of precomputed maps.
SAL = config["saliency"]
SAL_MODEL = "results/saliency/pfan/model.pt"
SAL_ID_LISTS = [prep("train_aug"), prep("val")]
if SAL["source"] == "precomputed" and not SAL["precomputed_dir"]:
    raise ValueError("saliency.source is precomputed but saliency.precomputed_dir is not set: "
                     "point it at a folder of <id>.png maps, or set saliency.source: pfan")


def saliency_model(wildcards=None):
    """Input function: the PFAN model file inference uses (saliency.checkpoint skips training)."""
    return SAL["checkpoint"] or SAL_MODEL


def saliency_shards(wildcards=None):
    """Input function of merge_saliency: every shard folder of PFAN inference."""
    return [f"results/shards/saliency/{s}" for s in SHARDS]


STAGE_TARGETS += ["results/saliency/maps"]
if SAL["source"] == "pfan":
    STAGE_TARGETS += ["results/tables/saliency.csv"]


# ---- classifier (stage: classifier) --------------------------------------------------------
# CAM / EPS classifiers, their localization maps (sharded) and pseudo-masks for train_aug.
CLS = config["classifier"]
PM = config["pseudo_masks"]
# The maps each pseudo-mask source reads: cam_sal gates cam's CAMs with saliency.
PM_CAMS = {"cam": "results/cams/cam", "cam_sal": "results/cams/cam", "eps": "results/cams/eps"}
if config["evaluation"]["pseudo_mask_split"] == "val":
    raise ValueError("evaluation.pseudo_mask_split is val, but pseudo-masks are made for train_aug ids "
                     "only (as in the paper): set it to train or train_aug")


def classifier_saliency_input(wildcards):
    """Input function of train_classifier: EPS trains on the saliency maps; CAM needs none."""
    return "results/saliency/maps" if wildcards.method == "eps" else []


def classifier_train_section(wildcards):
    """Params of train_classifier: the `classifier` section without inference or job-resource keys
    (so changing inference scales does not retrain) and, for cam, without the EPS keys."""
    section = {k: v for k, v in CLS.items() if k != "infer"}
    if wildcards.method == "cam":
        section = {k: v for k, v in section.items() if k not in ("tau", "lam", "sal_warmup")}
    section["train"] = {k: v for k, v in CLS["train"].items() if k not in ("threads", "runtime")}
    return section


def classifier_infer_section(wildcards):
    """Params of infer_cams: inference keys without the job-resource ones, with this
    classifier's scales and flip resolved (each one value for both, or a cam/eps mapping)."""
    infer = {k: v for k, v in CLS["infer"].items() if k not in ("threads", "runtime")}
    for key, default in (("scales", [0.5, 1.0, 1.5, 2.0]), ("flip", True)):
        if isinstance(infer[key], dict):
            infer[key] = infer[key].get(wildcards.method, default)
    return infer


def cams_shards(wildcards):
    """Input function of merge_cams: every shard folder of one method's maps."""
    return [f"results/shards/cams/{wildcards.method}/{s}" for s in SHARDS]


def pseudo_mask_cams_input(wildcards):
    return PM_CAMS[wildcards.method]


def pseudo_mask_saliency_input(wildcards):
    """cam_sal gates the CAM mask with the saliency maps; the other sources do not read them."""
    return "results/saliency/maps" if wildcards.method == "cam_sal" else []


STAGE_TARGETS += [f"results/pseudo_masks/{m}" for m in config["methods"]]
STAGE_TARGETS += ["results/tables/pseudo_mask_miou.csv"]
if "cam" in config["methods"]:
    STAGE_TARGETS += ["results/tables/cam_thresholds.csv"]


def eval_final_targets():
    """The evaluation stage's final targets (tables, their figures, grids, loss curves).

    The confusion-ratio table needs scene labels: always there on the synthetic benchmark; for
    VOC only once evaluation.context_md5 / context_labels_md5 are set (PASCAL-Context), so a
    VOC run without them still ends with the other tables (`snakemake results/tables/confusion.csv`
    then stops with a message asking for the checksums).
    """
    tables = ["miou", "boundary"]
    if SOURCE == "synthetic" or (EVAL["context_md5"] and EVAL["context_labels_md5"]):
        tables.append("confusion")
    targets = [f"results/tables/{t}.csv" for t in tables] + [f"results/figures/{t}.png" for t in tables]
    grids = ["pseudo"] + (["deeplab"] if eval_methods("deeplab") else [])
    targets += [f"results/figures/qualitative_{g}.png" for g in grids]
    if eval_loss_csvs():
        targets.append("results/figures/losses.png")
    return targets


# ---- scale-out (stage: slurm / multi-GPU) ----------------------------------------------------
# A rule's gpu=N is clamped, silently, to a global `--resources gpu=M` cap when N > M. The cap
# usually comes from profiles/default, which Snakemake loads from the working directory even
# next to `--profile profiles/slurm`; a set-resources gpu=N>1 (multi-GPU DDP training) would
# then run on one GPU. Stop before any job starts instead.
def _resource_value(res):
    return getattr(res, "value", res)


def check_gpu_requests():
    cap = _resource_value(workflow.global_resources.get("gpu"))
    if cap is None:
        return
    for rule_name, res in workflow.resource_settings.overwrite_resources.items():
        asked = _resource_value(res.get("gpu")) if "gpu" in res else None
        if isinstance(asked, int) and asked > cap:
            raise WorkflowError(
                f"set-resources asks gpu={asked} for rule {rule_name}, but the global resource cap is "
                f"gpu={cap} (--resources, or profiles/default loaded as the workflow profile), so the job "
                f"would silently get {cap} GPU(s). On SLURM add `--workflow-profile none`; on one machine "
                f"pass `--resources gpu={asked}`."
            )


check_gpu_requests()
