# Evaluation stage: one job per (stage, method) and metric writes a small JSON (+ the confusion
# matrix), table rules gather them into results/tables/*.csv, figure rules draw them, and the
# Snakemake report collects tables and figures with captions from workflow/report/.
#
# Which stages each table covers is config (evaluation.tables). Default: mIoU on all four
# (pseudo-mask, + CRF, DeepLab val, + CRF); boundary and confusion ratio on the pseudo-masks only,
# so `snakemake results/tables/boundary.csv` (or confusion.csv) trains no DeepLab.


report: "../report/workflow.rst"


EVAL_WILDCARDS = {"stage": "|".join(EVAL_STAGE_DIRS)}


rule evaluate_miou:
    """Confusion matrix, mIoU, precision, recall of one (stage, method) against the ground truth."""
    input:
        pred=eval_pred_dir,
        prepared=PREP,
    output:
        matrix="results/{variant}eval/{stage}/{method}/confusion_matrix.npz",
        summary="results/{variant}eval/{stage}/{method}/miou.json",
    wildcard_constraints:
        **EVAL_WILDCARDS,
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
    threads: EVAL["processes"]
    resources:
        mem_mb=2000,
        runtime=30,
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
        **EVAL_WILDCARDS,
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
    threads: EVAL["processes"]
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../scripts/evaluate_boundary.py"


rule evaluate_confusion_ratio:
    """Confusion ratio FP_{k,c}/TP_c and target IoU of one (stage, method) for the configured pairs."""
    input:
        pred=eval_pred_dir,
        prepared=PREP,
        context=RAW_CONTEXT,
    output:
        summary="results/eval/{stage}/{method}/confusion_ratio.json",
    wildcard_constraints:
        **EVAL_WILDCARDS,
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
    threads: EVAL["processes"]
    resources:
        mem_mb=2000,
        runtime=30,
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
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/make_table.py"


rule table_boundary:
    """results/tables/boundary.csv from every evaluate_boundary result."""
    input:
        results=eval_results("boundary"),
    output:
        table=report("results/tables/boundary.csv", caption="../report/boundary.rst", category="Tables"),
    log:
        "logs/table_boundary/table_boundary.log",
    benchmark:
        "benchmarks/table_boundary/table_boundary.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/make_table.py"


rule table_confusion_ratio:
    """results/tables/confusion_ratio.csv from every evaluate_confusion_ratio result."""
    input:
        results=eval_results("confusion_ratio"),
    output:
        table=report("results/tables/confusion_ratio.csv", caption="../report/confusion_ratio.rst", category="Tables"),
    log:
        "logs/table_confusion_ratio/table_confusion_ratio.log",
    benchmark:
        "benchmarks/table_confusion_ratio/table_confusion_ratio.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
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
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
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
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/figure_table.py"


rule figure_qualitative:
    """Qualitative grid for fixed ids: pseudo-masks on the train split, DeepLab on val ({split})."""
    input:
        prepared=PREP,
        saliency="results/saliency/maps",
        columns=eval_grid_inputs,
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
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
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
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/figure_losses.py"


STAGE_TARGETS += eval_final_targets()
# `make seeds` runs outside the DAG (12 full runs); once it has, the report shows its table too.
if os.path.exists("results/bench/seeds_summary.csv"):
    STAGE_TARGETS += ["results/tables/seeds.csv"]
