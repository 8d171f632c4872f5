"""What each job reads of the config: one function per stage, called once by the rule.

The rule passes the function's result as its params, and the job turns it into its dataclasses
with `wsss.core.schema.from_section` (an unknown key is an error), so a config section is
trimmed in exactly one place and a job reruns exactly when what it reads changes. Job sizes are
not here: they are the `jobs` section's (`job_size`), never a job's params, so resizing a job
reruns nothing.

Nothing here imports torch: the Snakefile calls these while parsing.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsss.core.schema import section_defaults
from wsss.methods.registry import CLASSIFIERS, Classifier, Method

# Keys of the `classifier` section that are not the network's: its training recipe, the inference
# settings of infer_cams, the files import_classifier reads.
_CLASSIFIER_NOT_MODEL = ("train", "infer", "checkpoint")
# Keys of `classifier.infer` that steer the workflow (which map files stay on disk), not the inference:
# changing them reruns no infer_cams job.
_INFER_WORKFLOW = ("keep_maps", "maps_in_flight")
# Keys of the `deeplab` section that the workflow reads (which masks, which CRF), not the trainer.
_DEEPLAB_WORKFLOW = ("methods", "train_on_crf", "infer_scales", "infer_flip")
JOB_DEFAULTS = ("threads", "mem_mb", "runtime")


def job_size(config: dict, rule: str) -> dict:
    """threads, mem_mb and runtime of `rule`: its `jobs` entry, else its family's (the name before
    the first underscore: `download` sizes download_voc, `extract` extract_sbd), else `default`."""
    jobs = config["jobs"]
    size = dict(jobs["default"])
    size.update(jobs.get(rule.split("_", 1)[0], {}))
    size.update(jobs.get(rule, {}))
    return {k: size[k] for k in JOB_DEFAULTS}


@dataclass(frozen=True)
class SaliencyFiles:
    """What decides the saliency stage's rules and their input files (not a job's settings)."""
    source: str                  # pfan | precomputed | released
    checkpoint: str | None       # a trained PFAN: inference and evaluation skip training
    precomputed_dir: str | None  # the user's maps (source precomputed)
    released_archive: str | None  # the authors' maps (source released)
    backbone_weights: str | None  # PFAN's VGG-16 init


def saliency_files(config: dict) -> SaliencyFiles:
    s = config["saliency"]
    return SaliencyFiles(s["source"], s["checkpoint"], s["precomputed_dir"], s["released_archive"],
                         s["model"]["backbone_weights"])


def saliency_training(config: dict) -> dict:
    """train_saliency's settings: PFAN, its recipe and the held-out split of its training set."""
    s = config["saliency"]
    return {"model": s["model"], "train": s["train"], "holdout": s["holdout"]}


def saliency_inference(config: dict) -> dict:
    """infer_saliency's settings."""
    return {"batch_size": config["saliency"]["infer"]["batch_size"]}


def saliency_import(config: dict) -> dict:
    """import_precomputed_saliency's settings: how maps of another size or 0/1 maps are taken."""
    s = config["saliency"]
    return {"resize_mismatched": s["resize_mismatched"], "binary_maps": s["binary_maps"]}


def saliency_evaluation(config: dict) -> dict:
    """evaluate_saliency's settings: the held-out split, the centre prior it is compared with."""
    s = config["saliency"]
    return {"holdout": s["holdout"], "centre_sigma": s["centre_prior_sigma"], "batch_size": s["infer"]["batch_size"]}


def generated_saliency(config: dict, source: str) -> dict:
    """ablation_saliency's settings for one generated source: the centre prior's sigma, nothing for
    the ground truth's foreground, so a changed sigma remakes the centre prior alone."""
    return {"centre_prior_sigma": config["saliency"]["centre_prior_sigma"]} if source == "centre_prior" else {}


def classifier_training(section: dict, record: Classifier) -> dict:
    """train_classifier's settings: the network, the recipe and this classifier's own keys. The
    other classifiers' own keys are left out: changing EPS's tau never retrains the baseline."""
    others = {k for c in CLASSIFIERS.values() for k in c.own_keys}
    model = {k: v for k, v in section.items() if k not in _CLASSIFIER_NOT_MODEL and k not in others}
    own = {k: section[k] for k in record.own_keys if k in section}  # a key not given takes its default
    return {"model": model, "train": dict(section["train"]), "own": own}


def cam_inference(config: dict, record: Classifier) -> dict:
    """infer_cams' settings: `classifier.infer` with scales and flip resolved for this classifier
    (a classifier not named in a per-classifier mapping gets the paper's four scales + flip). With
    pseudo_masks.eps_rule official, a classifier with a background map (eps) computes its maps by
    the official infer.py protocol."""
    params = {k: v for k, v in config["classifier"]["infer"].items() if k not in _INFER_WORKFLOW}
    defaults = section_defaults("classifier.infer")
    for key in ("scales", "flip"):
        if isinstance(params.get(key), dict):
            params[key] = params[key].get(record.name, defaults[key])
    if config["pseudo_masks"]["eps_rule"] == "official" and record.background_map:
        params["official"] = True
    return params


def pseudo_mask_params(config: dict, record: Method) -> dict:
    """make_pseudo_masks' settings: the `pseudo_masks` keys this method's rule reads."""
    return {k: config["pseudo_masks"][k] for k in record.mask_keys}


def crf_unary(config: dict, record: Method) -> str:
    """crf.unary for one method: one value for all, or a mapping; else the method's default. A
    method without a classifier has no maps to build probabilities from: its unary is its labels."""
    if record.classifier is None:
        return "labels"
    unary = config["crf"]["unary"]
    return unary if isinstance(unary, str) else unary.get(record.name, record.crf_unary)


def crf_saliency_gated(config: dict, record: Method) -> bool:
    """The method's `probs` unary carries its pseudo-masks' saliency gating (cam_sal)."""
    return crf_unary(config, record) == "probs" and record.crf_saliency_gate


def _crf_kernels(config: dict) -> dict:
    """The dense CRF's kernels and iterations: what every unary reads."""
    return {k: v for k, v in config["crf"].items() if k not in ("unary", "gt_prob")}


def crf_refinement(config: dict, record: Method) -> dict:
    """refine_crf's settings: the CRF's kernels, this method's unary and what that unary reads: a
    `labels` unary its confidence (crf.gt_prob); a `probs` unary built from CAMs the background score
    (the CAM pseudo-mask threshold) and, saliency-gated, its gating threshold. So a changed gt_prob
    reruns no `probs` CRF, and a changed threshold no `labels` one."""
    unary = crf_unary(config, record)
    if unary == "labels":
        return {**_crf_kernels(config), "unary": unary, "gt_prob": config["crf"]["gt_prob"]}
    pm = config["pseudo_masks"]
    gate = pm["saliency_threshold"] if crf_saliency_gated(config, record) else None
    return {**_crf_kernels(config), "unary": unary, "bg_threshold": pm["threshold"], "saliency_threshold": gate}


def threshold_sweep(config: dict) -> dict:
    """cam_threshold_sweep's settings: the thresholds swept and the one the pseudo-masks use."""
    pm = config["pseudo_masks"]
    return {"thresholds": pm["sweep"], "threshold": pm["threshold"]}


def released_archive(config: dict) -> str | None:
    """The archive of the authors' released pseudo-masks (method `released`): pseudo_masks.released_archive,
    else the data source's release in the weights stage; None when neither exists."""
    from wsss.data.sources import source

    if config["pseudo_masks"]["released_archive"]:
        return config["pseudo_masks"]["released_archive"]
    name = source(config["dataset"]["source"]).released_pseudo_masks
    return f"{config['weights']['dir']}/{name}" if name else None


def evaluation_shard(config: dict, kind: str) -> dict:
    """evaluate_shard's settings for one kind: the boundary tolerance for `boundary`, the confusion
    pairs for `confusion_ratio`, nothing for `miou`, so changing one metric's setting rescores no other."""
    section = config["evaluation"]
    return {"miou": {}, "boundary": {"tolerance": section["boundary_tolerance"]},
            "confusion_ratio": {"pairs": section["confusion_pairs"]}}[kind]


def released_archive_fix(config: dict) -> str:
    """What to do when the released pseudo-mask archive lacks an id or holds a bad mask: the user's
    own archive (pseudo_masks.released_archive) is theirs to replace; the weights stage's copy is
    downloaded again."""
    drop = "or drop `released` from `methods` and `deeplab.methods`"
    if config["pseudo_masks"]["released_archive"]:
        return (f"replace {config['pseudo_masks']['released_archive']} (pseudo_masks.released_archive) with the "
                f"authors' pseudo-masks of this dataset's train_aug ids, {drop}")
    return f"re-download it with `snakemake --forcerun download_weights`, {drop}"


def intervals(config: dict) -> dict:
    """table_intervals' settings: the bootstrap, and the confusion pairs its ratios are named by."""
    section = config["evaluation"]
    return {"bootstrap": section["bootstrap"], "pairs": section["confusion_pairs"]}


def qualitative_figure(config: dict) -> dict:
    """figure_qualitative's settings: how many images it draws."""
    return {"rows": config["evaluation"]["figure_count"]}


def loss_figure(config: dict) -> dict:
    """figure_losses' settings: the smoothing of the curves."""
    return {"smooth": config["evaluation"]["loss_smoothing"]}


def deeplab_training(config: dict) -> dict:
    """train_segmentation's settings: the network, its init and the recipe."""
    return {k: v for k, v in config["deeplab"].items() if k not in _DEEPLAB_WORKFLOW}


def deeplab_inference(config: dict) -> dict:
    """infer_segmentation's settings: test-time scales and flip, and the CRF on DeepLab's softmax."""
    deeplab = config["deeplab"]
    return {"scales": list(deeplab["infer_scales"]), "flip": deeplab["infer_flip"],
            "crf": {**_crf_kernels(config), "unary": "probs"}}
