# Evaluation stage: one job per (stage, method) and metric writes a small JSON (+ the confusion
# matrix), table rules gather them into results/tables/*.csv, figure rules draw them, and the
# Snakemake report collects tables and figures with captions from workflow/report/.
#
# Stages (wsss.config.plan.STAGES): pseudo/pseudo_crf = the pseudo-masks (before/after the dense
# CRF) on evaluation.pseudo_mask_split; deeplab/deeplab_crf = DeepLab's predictions on
# evaluation.segmentation_split. Which stages each table covers is evaluation.tables; which tables
# exist is the data source's (a COCO run has no boundary table).


include: "inputs/evaluation.smk"


report: "../report/workflow.rst"


rule evaluate_shard:
    """One shard of the {kind} evaluation of one (stage, method): every image's counts against the ground truth."""
    input:
        unpack(eval_shard_inputs),
    output:
        counts=results.path("eval_shard"),
    log:
        "logs/evaluate_shard/{variant}{stage}_{method}_{kind}_{shard}.log",
    benchmark:
        "benchmarks/evaluate_shard/{variant}{stage}_{method}_{kind}_{shard}.tsv"
    wildcard_constraints:
        stage="|".join(plan.STAGES),
        kind="miou|boundary|confusion_ratio",
    conda:
        ENV
    threads: job_threads("evaluate_shard")
    resources:
        **job_resources("evaluate_shard"),
    params:
        ids=eval_ids,
        reads=eval_shard_reads,
        num_shards=EVAL["shards"],
    script:
        "../scripts/evaluate_shard.py"


rule evaluate_miou:
    """Confusion matrix, mIoU, precision, recall of one (stage, method) from its shards."""
    input:
        shards=lambda wildcards: eval_shards(wildcards, "miou"),
        prepared=PREP,
    output:
        matrix=results.path("eval_matrix"),
        summary=results.path("eval_miou"),
        per_image=results.path("eval_miou_per_image"),
    log:
        "logs/evaluate_miou/{variant}{stage}_{method}.log",
    benchmark:
        "benchmarks/evaluate_miou/{variant}{stage}_{method}.tsv"
    wildcard_constraints:
        stage="|".join(plan.STAGES),
    conda:
        ENV
    threads: job_threads("evaluate_miou")
    resources:
        **job_resources("evaluate_miou"),
    params:
        classes=prep("classes"),
    script:
        "../scripts/evaluate_miou.py"


rule evaluate_boundary:
    """Class-agnostic boundary precision/recall/F1 of one (stage, method) from its shards."""
    input:
        shards=lambda wildcards: eval_shards(wildcards, "boundary"),
        prepared=PREP,
    output:
        summary=results.path("eval_boundary"),
        per_image=results.path("eval_boundary_per_image"),
    log:
        "logs/evaluate_boundary/{stage}_{method}.log",
    benchmark:
        "benchmarks/evaluate_boundary/{stage}_{method}.tsv"
    wildcard_constraints:
        stage="|".join(plan.STAGES),
    conda:
        ENV
    threads: job_threads("evaluate_boundary")
    resources:
        **job_resources("evaluate_boundary"),
    params:
        **settings.evaluation_shard(config, "boundary"),
        boundaries=prep("boundaries"),
    script:
        "../scripts/evaluate_boundary.py"


rule evaluate_confusion_ratio:
    """Confusion ratio FP_{k,c}/TP_c and target IoU of one (stage, method) for the configured pairs, from its shards."""
    input:
        shards=lambda wildcards: eval_shards(wildcards, "confusion_ratio"),
        prepared=PREP,
        context=SCENE_LABELS,
    output:
        summary=results.path("eval_confusion_ratio"),
        per_image=results.path("eval_confusion_ratio_per_image"),
    log:
        "logs/evaluate_confusion_ratio/{stage}_{method}.log",
    benchmark:
        "benchmarks/evaluate_confusion_ratio/{stage}_{method}.tsv"
    wildcard_constraints:
        stage="|".join(plan.STAGES),
    conda:
        ENV
    threads: job_threads("evaluate_confusion_ratio")
    resources:
        **job_resources("evaluate_confusion_ratio"),
    params:
        **settings.evaluation_shard(config, "confusion_ratio"),
        classes=prep("classes"),
    script:
        "../scripts/evaluate_confusion_ratio.py"


rule table_miou:
    """results/tables/miou.csv and miou_per_class.csv from every evaluate_miou result."""
    input:
        results=eval_results("miou"),
    output:
        table=report(results.path("table", table="miou"), caption="../report/miou.rst", category="Tables"),
        per_class=report(results.path("miou_per_class"), caption="../report/miou_per_class.rst", category="Tables"),
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
        table=report(results.path("table", table="boundary"), caption="../report/boundary.rst", category="Tables"),
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
        table=report(
            results.path("table", table="confusion_ratio"), caption="../report/confusion_ratio.rst", category="Tables"
        ),
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


rule table_intervals:
    """results/tables/intervals.csv: a paired bootstrap interval over images on each table's values and differences."""
    input:
        per_image=[e["file"] for e in interval_entries()],
    output:
        table=report(results.path("table", table="intervals"), caption="../report/intervals.rst", category="Tables"),
    log:
        "logs/table_intervals/table_intervals.log",
    benchmark:
        "benchmarks/table_intervals/table_intervals.tsv"
    conda:
        ENV
    threads: job_threads("table_intervals")
    resources:
        **job_resources("table_intervals"),
    params:
        **settings.intervals(config),
        entries=interval_entries(),
    script:
        "../scripts/table_intervals.py"


rule table_seeds:
    """results/tables/seeds.csv: `make seeds`' mean ± std and claims, and seeds_runs.csv: each run's
    claims, for the report (when make seeds has run)."""
    input:
        cells=results.path("seeds_cells"),
        summary=results.path("seeds_summary"),
    output:
        table=report(results.path("table", table="seeds"), caption="../report/seeds.rst", category="Tables"),
        runs=report(results.path("seeds_runs"), caption="../report/seeds_runs.rst", category="Tables"),
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
    """Bar chart of one table (miou, boundary or confusion_ratio), each bar with its 95 % interval."""
    input:
        table=results.path("table"),
        intervals=results.path("table", table="intervals"),
    output:
        figure=report(results.path("figure"), caption="../report/fig_table.rst", category="Figures"),
    log:
        "logs/figure_table/{table}.log",
    benchmark:
        "benchmarks/figure_table/{table}.tsv"
    wildcard_constraints:
        table="miou|boundary|confusion_ratio",
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
        saliency=results.path("saliency_maps"),
        columns=lambda wildcards: eval_grid_columns(wildcards.split)[1],
    output:
        figure=report(results.path("figure_qualitative"), caption="../report/fig_qualitative.rst", category="Figures"),
    log:
        "logs/figure_qualitative/{split}.log",
    benchmark:
        "benchmarks/figure_qualitative/{split}.tsv"
    wildcard_constraints:
        split="pseudo|deeplab",
    conda:
        ENV
    threads: job_threads("figure_qualitative")
    resources:
        **job_resources("figure_qualitative"),
    params:
        **settings.qualitative_figure(config),
        grid=eval_grid_params,
        images=prep("images"),
        gt=prep("masks"),
    script:
        "../scripts/figure_qualitative.py"


rule figure_losses:
    """Training-loss curves of every training run (the shared loop's loss CSVs)."""
    input:
        losses=list(eval_loss_csvs().values()),
    output:
        figure=report(results.path("figure_losses"), caption="../report/fig_losses.rst", category="Figures"),
    log:
        "logs/figure_losses/figure_losses.log",
    benchmark:
        "benchmarks/figure_losses/figure_losses.tsv"
    conda:
        ENV
    threads: job_threads("figure_losses")
    resources:
        **job_resources("figure_losses"),
    params:
        **settings.loss_figure(config),
        labels=list(eval_loss_csvs()),
    script:
        "../scripts/figure_losses.py"


rule table_paper:
    """results/tables/paper.csv: each row of the paper's tables on this dataset (the data source's record)
    with the published mIoU, this run's, its interval, and whether the published number falls inside it."""
    input:
        miou=results.path("table", table="miou"),
        intervals=results.path("table", table="intervals"),
    output:
        table=report(results.path("table", table="paper"), caption="../report/paper.rst", category="Tables"),
    log:
        "logs/table_paper/table_paper.log",
    benchmark:
        "benchmarks/table_paper/table_paper.tsv"
    conda:
        ENV
    threads: job_threads("table_paper")
    resources:
        **job_resources("table_paper"),
    params:
        published=paper_rows(),
        deeplab={"variant": DEEPLAB["variant"], "backbone": DEEPLAB["backbone"]},
    script:
        "../scripts/table_paper.py"


rule table_claims:
    """results/tables/claims.csv: the embedded default's claims (wsss.stages.claims) in this run, for a
    data source without published numbers."""
    input:
        tables=[results.path("table", table=t) for t in plan.tables(config)],
        intervals=results.path("table", table="intervals"),
    output:
        table=report(results.path("table", table="claims"), caption="../report/claims.rst", category="Tables"),
    log:
        "logs/table_claims/table_claims.log",
    benchmark:
        "benchmarks/table_claims/table_claims.tsv"
    conda:
        ENV
    threads: job_threads("table_claims")
    resources:
        **job_resources("table_claims"),
    script:
        "../scripts/table_claims.py"


rule report_headline:
    """The report's first page (workflow/report/workflow.rst embeds it): the headline sections of make run's
    summary (wsss.stages.headline) and the paper-vs-run or claims table."""
    input:
        miou=results.path("table", table="miou"),
        tables=[results.path("table", table=t) for t in plan.tables(config)],
        intervals=results.path("table", table="intervals"),
        against=PAPER_TABLE,
    output:
        page=report(results.path("headline"), caption="../report/headline.rst", category="Headline"),
    log:
        "logs/report_headline/report_headline.log",
    benchmark:
        "benchmarks/report_headline/report_headline.tsv"
    conda:
        ENV
    threads: job_threads("report_headline")
    resources:
        **job_resources("report_headline"),
    script:
        "../scripts/report_headline.py"
