# Evaluation stage: one job per (stage, method) and metric writes a small JSON (+ the confusion
# matrix), table rules gather them into results/tables/*.csv, figure rules draw them, and the
# Snakemake report collects tables and figures with captions from workflow/report/.
#
# Stages (wsss.config.plan.STAGES): pseudo/pseudo_crf = the pseudo-masks (before/after the dense
# CRF) on evaluation.pseudo_mask_split; deeplab/deeplab_crf = DeepLab's predictions on
# evaluation.segmentation_split. Which stages each table covers is evaluation.tables; which tables
# exist is the data source's (a COCO run has no boundary table).
EVAL = config["evaluation"]
# {variant} is "" but for an ablation's grid point, whose runs stop at the pseudo stage.
EVAL_STAGE_DIRS = {
    "pseudo": "results/{variant}pseudo_masks/{method}",
    "pseudo_crf": "results/pseudo_masks_crf/{method}",
    "deeplab": "results/deeplab/{method}/pred",
    "deeplab_crf": "results/deeplab/{method}/pred_crf",
}


def eval_pred_dir(wildcards):
    """Input function: the prediction folder of one (stage, method)."""
    return EVAL_STAGE_DIRS[wildcards.stage].format(method=wildcards.method, variant=wildcards.get("variant", ""))


def eval_ids(wildcards):
    """Params function: the id list a (stage, method) is scored on."""
    return prep(plan.eval_split(config, wildcards.stage))


def eval_results(kind):
    """The per-(stage, method) result files one table gathers (kind: miou, boundary, confusion_ratio);
    a table the data source cannot feed stops the plan with one line saying why."""
    if kind not in plan.tables(config) and kind in ("boundary", "confusion_ratio"):
        if kind not in SOURCE.tables():
            raise WorkflowError(SOURCE.missing_table(kind))
        raise WorkflowError("results/tables/confusion_ratio.csv needs PASCAL-Context: set evaluation.context_md5 "
                            "and evaluation.context_labels_md5 (config/README.md)")
    return [
        f"results/eval/{stage}/{method}/{kind}.json"
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
        cols = [(f"DeepLab ({m})", "deeplab", m) for m in deeplab]
        cols += [(f"DeepLab ({m}) + CRF", "deeplab_crf", m) for m in deeplab if methods.method(m).grid_crf]
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
    if SAL["source"] == "pfan" and not SAL["checkpoint"]:
        runs["PFAN (saliency)"] = "results/saliency/pfan/loss.csv"
    for c in plan.used_classifiers(config):
        if c not in IMPORTED:
            runs[f"classifier ({c})"] = f"results/classifier/{c}/loss.csv"
    for m in plan.eval_methods(config, "deeplab"):
        runs[f"DeepLab ({m})"] = f"results/deeplab/{m}/loss.csv"
    return runs


STAGE_TARGETS += [f"results/{kind}/{t}.{ext}" for t in plan.tables(config)
                  for kind, ext in (("tables", "csv"), ("figures", "png"))]
STAGE_TARGETS += [f"results/figures/qualitative_{g}.png" for g in ["pseudo"] + (["deeplab"] if DEEPLAB["methods"] else [])]
STAGE_TARGETS += ["results/figures/losses.png"] if eval_loss_csvs() else []
# `make seeds` runs outside the DAG (12 full runs); once it has, the report shows its table too.
STAGE_TARGETS += ["results/tables/seeds.csv"] if os.path.exists("results/bench/seeds_summary.csv") else []


report: "../report/workflow.rst"




rule evaluate_miou:
    """Confusion matrix, mIoU, precision, recall of one (stage, method) against the ground truth."""
    input:
        pred=eval_pred_dir,
        prepared=PREP,
    output:
        matrix="results/{variant}eval/{stage}/{method}/confusion_matrix.npz",
        summary="results/{variant}eval/{stage}/{method}/miou.json",
    wildcard_constraints:
        stage="|".join(plan.STAGES),
    params:
        gt=prep("masks"),
        ids=eval_ids,
        classes=prep("classes"),
    log:
        "logs/evaluate_miou/{variant}{stage}_{method}.log",
    benchmark:
        "benchmarks/evaluate_miou/{variant}{stage}_{method}.tsv"
    conda:
        ENV
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    script:
        "../scripts/evaluate_miou.py"


rule evaluate_boundary:
    """Class-agnostic boundary precision/recall/F1 of one (stage, method) against SBD boundaries."""
    input:
        pred=eval_pred_dir,
        prepared=PREP,
    output:
        summary="results/eval/{stage}/{method}/boundary.json",
    wildcard_constraints:
        stage="|".join(plan.STAGES),
    params:
        boundaries=prep("boundaries"),
        ids=eval_ids,
        tolerance=EVAL["boundary_tolerance"],
    log:
        "logs/evaluate_boundary/{stage}_{method}.log",
    benchmark:
        "benchmarks/evaluate_boundary/{stage}_{method}.tsv"
    conda:
        ENV
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    script:
        "../scripts/evaluate_boundary.py"


rule evaluate_confusion_ratio:
    """Confusion ratio FP_{k,c}/TP_c and target IoU of one (stage, method) for the configured pairs."""
    input:
        pred=eval_pred_dir,
        prepared=PREP,
        context=SCENE_LABELS,
    output:
        summary="results/eval/{stage}/{method}/confusion_ratio.json",
    wildcard_constraints:
        stage="|".join(plan.STAGES),
    params:
        gt=prep("masks"),
        ids=eval_ids,
        classes=prep("classes"),
        pairs=EVAL["confusion_pairs"],
    log:
        "logs/evaluate_confusion_ratio/{stage}_{method}.log",
    benchmark:
        "benchmarks/evaluate_confusion_ratio/{stage}_{method}.tsv"
    conda:
        ENV
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    script:
        "../scripts/evaluate_confusion_ratio.py"


rule table_miou:
    """results/tables/miou.csv and miou_per_class.csv from every evaluate_miou result."""
    input:
        results=eval_results("miou"),
    output:
        table=report("results/tables/miou.csv", caption="../report/miou.rst", category="Tables"),
        per_class=report(
            "results/tables/miou_per_class.csv", caption="../report/miou_per_class.rst", category="Tables"
        ),
    log:
        "logs/table_miou/table_miou.log",
    benchmark:
        "benchmarks/table_miou/table_miou.tsv"
    conda:
        ENV
    threads: job_threads("table_miou")
    resources:
        **job_resources("table_miou"),
    script:
        "../scripts/make_table.py"


rule table_boundary:
    """results/tables/boundary.csv from every evaluate_boundary result."""
    input:
        results=lambda wildcards: eval_results("boundary"),
    output:
        table=report("results/tables/boundary.csv", caption="../report/boundary.rst", category="Tables"),
    log:
        "logs/table_boundary/table_boundary.log",
    benchmark:
        "benchmarks/table_boundary/table_boundary.tsv"
    conda:
        ENV
    threads: job_threads("table_boundary")
    resources:
        **job_resources("table_boundary"),
    script:
        "../scripts/make_table.py"


rule table_confusion_ratio:
    """results/tables/confusion_ratio.csv from every evaluate_confusion_ratio result."""
    input:
        results=lambda wildcards: eval_results("confusion_ratio"),
    output:
        table=report("results/tables/confusion_ratio.csv", caption="../report/confusion_ratio.rst", category="Tables"),
    log:
        "logs/table_confusion_ratio/table_confusion_ratio.log",
    benchmark:
        "benchmarks/table_confusion_ratio/table_confusion_ratio.tsv"
    conda:
        ENV
    threads: job_threads("table_confusion_ratio")
    resources:
        **job_resources("table_confusion_ratio"),
    script:
        "../scripts/make_table.py"


rule table_seeds:
    """results/tables/seeds.csv: `make seeds`' mean ± std and claims, and seeds_runs.csv: each run's
    claims, for the report (when make seeds has run)."""
    input:
        cells="results/bench/seeds.csv",
        summary="results/bench/seeds_summary.csv",
    output:
        table=report("results/tables/seeds.csv", caption="../report/seeds.rst", category="Tables"),
        runs=report("results/tables/seeds_runs.csv", caption="../report/seeds_runs.rst", category="Tables"),
    log:
        "logs/table_seeds/table_seeds.log",
    benchmark:
        "benchmarks/table_seeds/table_seeds.tsv"
    conda:
        ENV
    threads: job_threads("table_seeds")
    resources:
        **job_resources("table_seeds"),
    script:
        "../scripts/table_seeds.py"


rule figure_table:
    """Bar chart of one table (miou, boundary or confusion_ratio)."""
    input:
        table="results/tables/{table}.csv",
    output:
        figure=report("results/figures/{table}.png", caption="../report/fig_table.rst", category="Figures"),
    wildcard_constraints:
        table="miou|boundary|confusion_ratio",
    log:
        "logs/figure_table/{table}.log",
    benchmark:
        "benchmarks/figure_table/{table}.tsv"
    conda:
        ENV
    threads: job_threads("figure_table")
    resources:
        **job_resources("figure_table"),
    script:
        "../scripts/figure_table.py"


rule figure_qualitative:
    """Qualitative grid for fixed ids: pseudo-masks on the train split, DeepLab on val ({split})."""
    input:
        prepared=PREP,
        saliency="results/saliency/maps",
        columns=lambda wildcards: eval_grid_columns(wildcards.split)[1],
    output:
        figure=report(
            "results/figures/qualitative_{split}.png", caption="../report/fig_qualitative.rst", category="Figures"
        ),
    wildcard_constraints:
        split="pseudo|deeplab",
    params:
        grid=eval_grid_params,
        rows=EVAL["figure_count"],
        images=prep("images"),
        gt=prep("masks"),
    log:
        "logs/figure_qualitative/{split}.log",
    benchmark:
        "benchmarks/figure_qualitative/{split}.tsv"
    conda:
        ENV
    threads: job_threads("figure_qualitative")
    resources:
        **job_resources("figure_qualitative"),
    script:
        "../scripts/figure_qualitative.py"


rule figure_losses:
    """Training-loss curves of every training run (the shared loop's loss CSVs)."""
    input:
        losses=list(eval_loss_csvs().values()),
    output:
        figure=report("results/figures/losses.png", caption="../report/fig_losses.rst", category="Figures"),
    params:
        labels=list(eval_loss_csvs()),
        smooth=EVAL["loss_smoothing"],
    log:
        "logs/figure_losses/figure_losses.log",
    benchmark:
        "benchmarks/figure_losses/figure_losses.tsv"
    conda:
        ENV
    threads: job_threads("figure_losses")
    resources:
        **job_resources("figure_losses"),
    script:
        "../scripts/figure_losses.py"


