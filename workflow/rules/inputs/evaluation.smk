# The evaluation stage's settings, input functions and final targets (its rules: rules/evaluation.smk; kept
# apart because snakemake --lint wants rules and functions in separate files).
import dataclasses

EVAL = config["evaluation"]
# {variant} is "" but for an ablation's grid point, whose runs stop at the pseudo stage.
EVAL_STAGE_DIRS = {
    "pseudo": results.path("pseudo_masks"),
    "pseudo_crf": results.path("pseudo_masks_crf"),
    "deeplab": results.path("deeplab_pred"),
    "deeplab_crf": results.path("deeplab_pred_crf"),
}


def eval_pred_dir(wildcards):
    """Input function: the prediction folder of one (stage, method)."""
    return EVAL_STAGE_DIRS[wildcards.stage].format(method=wildcards.method, variant=wildcards.get("variant", ""))


def eval_shard_inputs(wildcards):
    """Input function of evaluate_shard: the predictions, the prepared data, and the scene labels
    for the confusion ratio."""
    inputs = {"pred": eval_pred_dir(wildcards), "prepared": PREP}
    return {**inputs, "context": SCENE_LABELS} if wildcards.kind == "confusion_ratio" else inputs


def eval_shard_reads(wildcards):
    """Params function of evaluate_shard: the prepared folders and the settings its kind reads."""
    folders = {
        "miou": {"gt_dir": prep("masks"), "classes_file": prep("classes")},
        "boundary": {"boundary_dir": prep("boundaries")},
        "confusion_ratio": {"gt_dir": prep("masks"), "classes_file": prep("classes")},
    }[wildcards.kind]
    return {**folders, **settings.evaluation_shard(config, wildcards.kind)}


def eval_shards(wildcards, kind):
    """Input function of evaluate_<kind>: the per-image counts of every shard of one (stage, method)."""
    variant = wildcards.get("variant", "")
    return [
        results.path("eval_shard", variant=variant, stage=wildcards.stage, method=wildcards.method, kind=kind, shard=s)
        for s in range(EVAL["shards"])
    ]


def eval_ids(wildcards):
    """Params function: the id list a (stage, method) is scored on."""
    return prep(plan.eval_split(config, wildcards.stage))


def eval_results(kind):
    """The per-(stage, method) result files one table gathers (kind: miou, boundary, confusion_ratio);
    a table the data source cannot feed stops the plan with one line saying why."""
    if kind not in plan.tables(config) and kind in ("boundary", "confusion_ratio"):
        if kind not in SOURCE.tables():
            raise WorkflowError(SOURCE.missing_table(kind))
        raise WorkflowError(
            f"{results.path('table', table='confusion_ratio')} needs PASCAL-Context: set evaluation.context_md5 "
            "and evaluation.context_labels_md5 (config/README.md)"
        )
    return [
        results.path(f"eval_{kind}", variant="", stage=stage, method=method)
        for stage in EVAL["tables"][kind]
        for method in plan.eval_methods(config, stage)
    ]


def interval_entries():
    """What table_intervals resamples: each table's per-image file of every (stage, method)."""
    return [
        {
            "table": kind,
            "stage": stage,
            "method": method,
            "file": results.path(f"eval_{kind}_per_image", variant="", stage=stage, method=method),
        }
        for kind in plan.tables(config)
        for stage in EVAL["tables"][kind]
        for method in plan.eval_methods(config, stage)
    ]


def eval_grid_columns(split):
    """(titles, folders) of the qualitative grid: `pseudo` (train split) or `deeplab` (val split)."""
    if split == "pseudo":
        shown = [m for m in config["methods"] if methods.method(m).grid]
        cols = [(methods.method(m).label, "pseudo", m) for m in shown]
        cols += [(f"{methods.method(m).label} + CRF", "pseudo_crf", m) for m in shown if methods.method(m).grid_crf]
    else:
        deeplab = plan.eval_methods(config, "deeplab")
        # methods by the names the tables print (CAM, EPS, ground truth), not their keys
        cols = [(f"DeepLab ({methods.method(m).label})", "deeplab", m) for m in deeplab]
        cols += [
            (f"DeepLab ({methods.method(m).label}) + CRF", "deeplab_crf", m)
            for m in deeplab
            if methods.method(m).grid_crf
        ]
    return [t for t, _, _ in cols], [EVAL_STAGE_DIRS[s].format(method=m, variant="") for _, s, m in cols]


def eval_grid_params(wildcards):
    """Params of figure_qualitative: column titles, the split's id list, requested ids, title."""
    pseudo = wildcards.split == "pseudo"
    return {
        "titles": eval_grid_columns(wildcards.split)[0],
        "ids_file": prep(plan.eval_split(config, "pseudo" if pseudo else "deeplab")),
        "ids": EVAL["figure_ids_train"] if pseudo else EVAL["figure_ids_val"],
        "title": "pseudo-masks (train split)" if pseudo else "DeepLab predictions (val split)",
    }


def eval_loss_csvs():
    """{label: loss CSV} of every training run in the DAG (outputs of the training rules)."""
    runs = {}
    if SAL.source == "pfan" and not SAL.checkpoint:
        runs["PFAN (saliency)"] = results.path("saliency_losses")
    for c in plan.used_classifiers(config):
        if c not in IMPORTED:
            name = methods.method(c).label if c in methods.METHODS else c  # the method of its own name
            runs[f"classifier ({name})"] = results.path("classifier_losses", variant="", classifier=c)
    for m in plan.eval_methods(config, "deeplab"):
        runs[f"DeepLab on {methods.method(m).label}"] = results.path("deeplab_losses", method=m)
    return runs


def paper_rows():
    """Params of table_paper: the rows of the paper's tables on this dataset (the data source's record)."""
    return [dataclasses.asdict(p) for p in SOURCE.published]


# Beside this run, what it reproduces: the paper's numbers where the data source has them, else the
# embedded default's claims; the report's first page shows it (rule report_headline).
PAPER_TABLE = results.path("table", table="paper" if SOURCE.published else "claims")

STAGE_TARGETS += [results.path("table", table="intervals"), results.path("headline")]
STAGE_TARGETS += [results.path(kind, table=t) for t in plan.tables(config) for kind in ("table", "figure")]
STAGE_TARGETS += [
    results.path("figure_qualitative", split=g) for g in ["pseudo"] + (["deeplab"] if DEEPLAB["methods"] else [])
]
STAGE_TARGETS += [results.path("figure_losses")] if eval_loss_csvs() else []
# `make seeds` runs outside the DAG (12 full runs); once it has, the report shows its table too.
STAGE_TARGETS += [results.path("table", table="seeds")] if os.path.exists(results.path("seeds_summary")) else []
