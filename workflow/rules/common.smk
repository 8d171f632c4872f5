# Helpers shared by all the .smk files: paths from the layout module, the method registry's
# wildcards and per-method params, input functions. The wsss package never builds paths itself.
# NB for editors: snakemake --lint takes the word r-u-l-e, a space, then any text and a colon on one line, as a rule definition. Avoid that in comments of this file.
import os
import re

from wsss import ablation, methods
from wsss.schema import weights_table, without_job_keys
from wsss.data import layout

ROOT = config["dataset"]["root"]
SOURCE = config["dataset"]["source"]
DOWNLOADS = config["dataset"]["downloads"]
SHARDS = list(range(config["shards"]))
ENV = "../../envs/wsss.yaml"
SOURCE_ENV = "../../../envs/wsss.yaml"  # the same file, seen from rules/sources/
# GPUs a GPU-capable job asks for: none when the config pins the CPU (device: cpu), so such a run
# neither waits for GPU tokens nor asks SLURM for GPUs; otherwise one (gpu=N>1 via set-resources).
GPU = 0 if str(config["device"]).startswith("cpu") else 1

# The prepared dataset: the one layout every stage after prepare_dataset reads.
PREP = layout.prepared(ROOT)


def prep(name):
    """A path inside the prepared dataset (for params: the rule's input is PREP itself)."""
    return layout.prepared(ROOT, name)


# Raw layout folders (outputs of the data source's rules, rules/sources/<source>.smk).
RAW_VOC = layout.raw(ROOT, "voc")
RAW_SBD = layout.raw(ROOT, "sbd")
RAW_DUTS = layout.raw(ROOT, "duts")
RAW_CONTEXT = layout.raw(ROOT, "context")


# ---- the method registry (wsss.methods) --------------------------------------------------------
# {classifier}: a localization classifier (cam, eps); {method}: a mask source (cam, cam_sal, eps
# and gt, the ground truth: DeepLab's upper bound). Rules that make pseudo-masks narrow {method}
# to MASK_METHODS (every method but the ground truth).
MASK_METHODS = "|".join(methods.pseudo_mask_methods())


wildcard_constraints:
    classifier="|".join(methods.CLASSIFIERS),
    method="|".join(methods.METHODS),
    shard=r"\d+",
    # "" (the configured run) or ablation/<name>-<value>/ (a grid point of an ablation: wsss.ablation)
    variant=ablation.VARIANT_RE,


def check_method_names():
    """Every method and classifier the config names is registered (the schema checks only shapes)."""
    known = methods.pseudo_mask_methods()
    problems = [f"methods: {m!r}" for m in config["methods"] if m not in known]
    problems += [f"deeplab.methods: {m!r}" for m in config["deeplab"]["methods"] if m not in methods.METHODS]
    for key in ("scales", "flip"):
        value = config["classifier"]["infer"][key]
        if isinstance(value, dict):
            problems += [f"classifier.infer.{key}: {c!r}" for c in value if c not in methods.CLASSIFIERS]
    if isinstance(CRF["unary"], dict):
        problems += [f"crf.unary: {m!r}" for m in CRF["unary"] if m not in known]
    if problems:
        raise WorkflowError(
            "unknown method or classifier in the config: " + "; ".join(problems)
            + f". Registered methods: {', '.join(methods.METHODS)}; classifiers: "
            + f"{', '.join(methods.CLASSIFIERS)} (wsss.methods; docs/architecture.md, 'Add a method')."
        )


def classifier_maps(method, variant=""):
    """The localization-map folder a pseudo-mask method reads: its classifier's (of a variant run)."""
    return f"results/{variant}cams/{methods.method(method).classifier}"


# ---- weights (stage: weights) ------------------------------------------------------------------
WEIGHTS_DIR = config["weights"]["dir"]
WEIGHTS = weights_table(config)  # the schema's table plus the config's own entries
WEIGHTS_RE = "|".join(re.escape(name) for name in WEIGHTS) or "(?!x)x"


def weights_record(path):
    """The verification record a job that reads weights file `path` depends on: the weights stage
    downloads (or verifies) every file of weights.files; any other path is the user's (checked to
    exist when the config loads), and a torchvision weights name or null needs nothing."""
    if not path:
        return []
    path = os.path.normpath(str(path))
    if os.path.dirname(path) == os.path.normpath(WEIGHTS_DIR) and os.path.basename(path) in WEIGHTS:
        return f"{WEIGHTS_DIR}/.verified/{os.path.basename(path)}.json"
    return []


def final_targets():
    """What `snakemake` with no target builds: every stage that exists, to its tables."""
    return [PREP] + STAGE_TARGETS


# Stage rule files append their final outputs here (evaluated when `rule all` is parsed,
# after every include).
STAGE_TARGETS = []


# ---- evaluation (stage: evaluation) --------------------------------------------------------
# Predictions are scored per (stage, method): pseudo/pseudo_crf = the pseudo-masks (before/after
# the dense CRF) on evaluation.pseudo_mask_split; deeplab/deeplab_crf = DeepLab's predictions on
# evaluation.segmentation_split. Each table lists its stages in evaluation.tables.
EVAL = config["evaluation"]
# {variant} is "" but for an ablation's grid point, whose runs stop at the pseudo stage.
EVAL_STAGE_DIRS = {
    "pseudo": "results/{variant}pseudo_masks/{method}",
    "pseudo_crf": "results/pseudo_masks_crf/{method}",
    "deeplab": "results/deeplab/{method}/pred",
    "deeplab_crf": "results/deeplab/{method}/pred_crf",
}


def eval_methods(stage):
    """The methods that have predictions at `stage`: pseudo-mask sources, or DeepLab's training sources."""
    return config["methods"] if stage.startswith("pseudo") else DEEPLAB["methods"]


def eval_pred_dir(wildcards):
    """Input function: the prediction folder of one (stage, method)."""
    return EVAL_STAGE_DIRS[wildcards.stage].format(method=wildcards.method, variant=wildcards.get("variant", ""))


def eval_split(stage):
    return EVAL["pseudo_mask_split"] if stage.startswith("pseudo") else EVAL["segmentation_split"]


def eval_ids(wildcards):
    """Params function: the id list a (stage, method) is scored on."""
    return prep(eval_split(wildcards.stage))


def eval_results(kind):
    """The per-(stage, method) result files one table gathers (kind: miou, boundary, confusion_ratio)."""
    return [
        f"results/eval/{stage}/{method}/{kind}.json"
        for stage in EVAL["tables"][kind]
        for method in eval_methods(stage)
    ]


def eval_grid_columns(split):
    """(titles, folders) of the qualitative grid: `pseudo` (train split) or `deeplab` (val split)."""
    if split == "pseudo":
        shown = [m for m in config["methods"] if methods.method(m).grid]
        cols = [(methods.method(m).label, "pseudo", m) for m in shown]
        cols += [(f"{methods.method(m).label} + CRF", "pseudo_crf", m) for m in shown if methods.method(m).grid_crf]
    else:
        cols = [(f"DeepLab ({m})", "deeplab", m) for m in eval_methods("deeplab")]
        cols += [(f"DeepLab ({m}) + CRF", "deeplab_crf", m) for m in eval_methods("deeplab")
                 if methods.method(m).grid_crf]
    return [t for t, _, _ in cols], [EVAL_STAGE_DIRS[s].format(method=m, variant="") for _, s, m in cols]


def eval_grid_inputs(wildcards):
    """Input function of figure_qualitative: the prediction folders drawn as columns."""
    return eval_grid_columns(wildcards.split)[1]


def eval_grid_params(wildcards):
    """Params of figure_qualitative: column titles, the split's id list, requested ids, title."""
    pseudo = wildcards.split == "pseudo"
    return {
        "titles": eval_grid_columns(wildcards.split)[0],
        "ids_file": prep(eval_split("pseudo" if pseudo else "deeplab")),
        "ids": EVAL["figure_ids_train"] if pseudo else EVAL["figure_ids_val"],
        "title": "pseudo-masks (train split)" if pseudo else "DeepLab predictions (val split)",
    }


def eval_loss_csvs():
    """{label: loss CSV} of every training run in the DAG (outputs of the training rules)."""
    runs = {}
    if SAL["source"] == "pfan" and not SAL["checkpoint"]:
        runs["PFAN (saliency)"] = "results/saliency/pfan/loss.csv"
    for c in used_classifiers():
        if c not in IMPORTED:
            runs[f"classifier ({c})"] = f"results/classifier/{c}/loss.csv"
    for m in eval_methods("deeplab"):
        runs[f"DeepLab ({m})"] = f"results/deeplab/{m}/loss.csv"
    return runs


# ---- segmentation (stage: segmentation) ----------------------------------------------------
# Dense CRF on the pseudo-masks (sharded), DeepLab-v2 trained on the pseudo-masks of a method
# (or on the ground truth: method `gt`, an upper bound) and its predictions on val.
CRF = config["crf"]
DEEPLAB = config["deeplab"]
check_method_names()  # before any lookup of a configured name in the registry


def crf_unary(method):
    return methods.crf_unary(CRF["unary"], method)


def crf_saliency_gated(method):
    """The method's `probs` unary carries its pseudo-masks' saliency gating (wsss.methods: cam_sal)."""
    return crf_unary(method) == "probs" and methods.method(method).crf_saliency_gate


def crf_maps_input(wildcards):
    """Input function of refine_crf: the maps folder when the method's unary is `probs`, else nothing.
    (cam_sal reads cam's maps; its `probs` unary adds its saliency gating: crf_saliency_gated.)"""
    return classifier_maps(wildcards.method) if crf_unary(wildcards.method) == "probs" else []


def crf_params(wildcards):
    """Params of refine_crf: the crf section with this method's unary resolved."""
    return {**without_job_keys(CRF), "unary": crf_unary(wildcards.method)}


def saliency_chain_priority(wildcards):
    """10 for a job downstream of a classifier that trains on the saliency maps (EPS), else 0.

    saliency -> EPS classifier -> its maps, masks, CRF and DeepLab is the longest chain of a run:
    on 2 cores the baseline's jobs ran first and put it ~40 s later.
    """
    name = wildcards.get("classifier")
    if name is None:
        name = methods.method(wildcards.method).classifier
    return 10 if name is not None and methods.classifier(name).trains_on_saliency else 0


def deeplab_priority(wildcards):
    """EPS's DeepLab as its chain (10), the others' 5: the last long jobs of a run, they must not
    wait behind CRF refinements that only the pseudo_crf tables read."""
    return max(5, saliency_chain_priority(wildcards))


def crf_priority(wildcards):
    """The CRF is on DeepLab's path only when DeepLab trains on its masks; otherwise it goes last."""
    return saliency_chain_priority(wildcards) if DEEPLAB["train_on_crf"] else 0


def deeplab_train_params():
    """Params of train_segmentation: the deeplab section without any job's size (its own, and
    infer_segmentation's `infer`), so resizing a job reruns nothing."""
    return {k: v for k, v in without_job_keys(DEEPLAB).items() if k != "infer"}


def crf_ids():
    """The id list refine_crf refines: train_aug when DeepLab trains on the CRF masks, else only
    the split that the pseudo_crf tables and the qualitative figure read (VOC: 1,464 of 10,582)."""
    return prep("train_aug" if DEEPLAB["train_on_crf"] else EVAL["pseudo_mask_split"])


def crf_source(method):
    """The method whose refine_crf shards `method`'s CRF masks are: with the `probs` unary the CRF
    reads only the classifier's maps (not the pseudo-mask), so ungated methods of one classifier
    get identical masks, and the first of them in `methods` is refined once for all. A
    saliency-gated unary (cam_sal) is the method's own."""
    record = methods.method(method)
    if crf_unary(method) != "probs" or record.classifier is None or record.crf_saliency_gate:
        return method
    classifier = record.classifier
    return next(m for m in [*config["methods"], method] if crf_unary(m) == "probs"
                and methods.method(m).classifier == classifier and not methods.method(m).crf_saliency_gate)


def crf_shards(wildcards):
    """Input function of merge_refine_crf: every shard folder of the method's CRF source."""
    return [f"results/shards/pseudo_masks_crf/{crf_source(wildcards.method)}/{s}" for s in SHARDS]


def seg_masks_dir(method):
    """The masks DeepLab trains on: the prepared ground truth, else the pseudo-masks (CRF-refined
    ones when deeplab.train_on_crf)."""
    if methods.method(method).is_ground_truth:
        return prep("masks")
    return f"results/pseudo_masks{'_crf' if DEEPLAB['train_on_crf'] else ''}/{method}"


def seg_masks_input(wildcards):
    """Input function of train_segmentation (the ground truth is inside PREP, already an input)."""
    return [] if methods.method(wildcards.method).is_ground_truth else seg_masks_dir(wildcards.method)


STAGE_TARGETS += [
    f"results/deeplab/{m}/{out}" for m in DEEPLAB["methods"] for out in ("pred", "pred_crf", "loss.csv")
]


# ---- saliency (stage: saliency) --------------------------------------------------------------
# Saliency maps for every train_aug + val image in results/saliency/maps: PFAN trained on the
# DUTS-layout set (or a user-supplied PFAN model file), or a folder of precomputed maps.
SAL = config["saliency"]
SAL_MODEL = "results/saliency/pfan/model.pt"
SAL_ID_LISTS = [prep("train_aug"), prep("val")]
RELEASED_MAPS = f"{ROOT}/released_saliency"
# The folder import_precomputed_saliency reads: the user's, or the released archive's maps.
IMPORTED_MAPS = RELEASED_MAPS if SAL["source"] == "released" else SAL["precomputed_dir"]
if SAL["source"] == "precomputed" and not SAL["precomputed_dir"]:
    raise WorkflowError("saliency.source is precomputed but saliency.precomputed_dir is not set: "
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
# The classifiers the configured methods read, their localization maps (sharded) and the
# pseudo-masks for train_aug.
CLS = config["classifier"]
PM = config["pseudo_masks"]
if EVAL["pseudo_mask_split"] == "val":
    raise WorkflowError("evaluation.pseudo_mask_split is val, but pseudo-masks are made for train_aug ids "
                        "only (as in the paper): set it to train or train_aug")


# Classifiers given as files (classifier.checkpoint) are imported; the others are trained. A
# regex that matches nothing keeps a rule out when its list is empty.
IMPORTED = [c for c in methods.CLASSIFIERS if c in CLS["checkpoint"]]
NONE = "(?!x)x"
TRAINED_RE = "|".join(c for c in methods.CLASSIFIERS if c not in IMPORTED) or NONE
IMPORTED_RE = "|".join(IMPORTED) or NONE


def used_classifiers():
    """The classifiers the configured methods read, in registry order."""
    used = {methods.method(m).classifier for m in config["methods"]}
    return [c for c in methods.CLASSIFIERS if c in used]


def variant_saliency(variant):
    """The saliency maps a run trains on: the workflow's, or a saliency ablation point's own."""
    source = ablation.point_saliency(variant)
    return f"results/ablation/saliency_maps/{source}" if source else "results/saliency/maps"


def classifier_saliency_input(wildcards):
    """Input function of train_classifier: the saliency maps, for a classifier that trains on them."""
    trains_on = methods.classifier(wildcards.classifier).trains_on_saliency
    return variant_saliency(wildcards.variant) if trains_on else []


def classifier_train_section(wildcards):
    """Params of train_classifier: what this classifier's training reads (wsss.methods), with an
    ablation point's setting (wsss.ablation)."""
    return methods.classifier_train_params(ablation.point_section(CLS, wildcards.variant), wildcards.classifier)


def classifier_infer_section(wildcards):
    """Params of infer_cams: this classifier's inference keys, scales and flip resolved."""
    return methods.classifier_infer_params(CLS["infer"], wildcards.classifier, PM["eps_rule"])


def cams_shards(wildcards):
    """Input function of merge_cams: every shard folder of one classifier's maps."""
    return [f"results/{wildcards.variant}shards/cams/{wildcards.classifier}/{s}" for s in SHARDS]


def pseudo_mask_cams_input(wildcards):
    return classifier_maps(wildcards.method, wildcards.get("variant", ""))


def pseudo_mask_saliency_input(wildcards):
    """The saliency maps, for a method whose pseudo-mask function reads them (cam_sal); a variant's own."""
    return variant_saliency(wildcards.variant) if methods.method(wildcards.method).needs_saliency else []


STAGE_TARGETS += [f"results/pseudo_masks/{m}" for m in config["methods"]]
STAGE_TARGETS += ["results/tables/pseudo_mask_miou.csv"]
STAGE_TARGETS += [
    f"results/tables/{m}_thresholds.csv" for m in config["methods"] if methods.method(m).threshold_sweep
]


def eval_final_targets():
    """The evaluation stage's final targets (tables, their figures, grids, loss curves).

    The confusion-ratio table needs scene labels: always there on the synthetic benchmark; for
    VOC only once evaluation.context_md5 / context_labels_md5 are set (PASCAL-Context), so a
    VOC run without them still ends with the other tables (`snakemake results/tables/confusion_ratio.csv`
    then stops with a message asking for the checksums).
    """
    tables = ["miou", "boundary"]
    if SOURCE == "synthetic" or (EVAL["context_md5"] and EVAL["context_labels_md5"]):
        tables.append("confusion_ratio")
    targets = [f"results/tables/{t}.csv" for t in tables] + [f"results/figures/{t}.png" for t in tables]
    grids = ["pseudo"] + (["deeplab"] if eval_methods("deeplab") else [])
    targets += [f"results/figures/qualitative_{g}.png" for g in grids]
    if eval_loss_csvs():
        targets.append("results/figures/losses.png")
    return targets


# ---- ablation (stage: ablation) ------------------------------------------------------------
# The paper's ablations (wsss.ablation): one EPS run per grid point, under
# results/ablation/<name>-<value>/ (the {variant} wildcard of train_classifier, infer_cams,
# merge_cams, make_pseudo_masks, evaluate_miou); a point equal to the configured run is that run.
ABL = config["ablation"]


def ablation_variants(name):
    """The variant folder of each point of ablation `name`, in grid order."""
    if ablation.CLASSIFIER in IMPORTED:
        raise WorkflowError(f"the {name} ablation trains {ablation.CLASSIFIER} classifiers, but classifier.checkpoint "
                            f"imports {ablation.CLASSIFIER}: drop classifier.checkpoint.{ablation.CLASSIFIER} to run it")
    if not ABL[name]:
        raise WorkflowError(f"ablation.{name} is empty: give it the values to compare (config/README.md, `ablation`)")
    return [ablation.variant(name, v, CLS) for v in ABL[name]]


def ablation_results(wildcards):
    """Input function of table_ablation: each point's pseudo-mask mIoU result."""
    return [f"results/{v}eval/pseudo/{ablation.METHOD}/miou.json" for v in ablation_variants(wildcards.ablation)]


def ablation_points(wildcards):
    """Params of table_ablation: value, label and whether it is the configured run, per point."""
    return [{"value": ablation.format_value(v), "label": ablation.point_label(wildcards.ablation, v, SAL),
             "configured": ablation.is_configured(wildcards.ablation, v, CLS)} for v in ABL[wildcards.ablation]]


def ablation_targets(names):
    """The table and figure of each named ablation."""
    return [f"results/{kind}/ablation_{n}.{ext}" for n in names for kind, ext in (("tables", "csv"), ("figures", "png"))]


STAGE_TARGETS += ablation_targets(ABL["in_all"])


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
