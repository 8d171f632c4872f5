# Ablation stage: the paper's ablations (wsss.stages.ablation). Every grid point is a full EPS run by the
# classifier stage's own rules under results/ablation/<name>-<value>/ (one train_classifier job per
# point, so on SLURM each point is its own job); table_ablation gathers the points' pseudo-mask
# mIoU, figure_ablation draws it. Not in `rule all` unless ablation.in_all names it: build them
# with `make ablations` or `snakemake ablations` (or one table: results/tables/ablation_tau.csv).


include: "inputs/ablation.smk"


rule ablations:
    """Every ablation with a non-empty grid: tables and figures."""
    input:
        ablation_targets([name for name in ablation.ABLATIONS if ABL[name]]),


rule ablation_saliency:
    """Saliency maps of source {source} (ground-truth foreground or centre prior) for every train_aug id."""
    input:
        prepared=PREP,
    output:
        maps=directory(results.path("ablation_saliency")),
    log:
        "logs/ablation_saliency/{source}.log",
    benchmark:
        "benchmarks/ablation_saliency/{source}.tsv"
    wildcard_constraints:
        source="|".join(ablation.GENERATED_SALIENCY),
    conda:
        ENV
    threads: job_threads("ablation_saliency")
    resources:
        **job_resources("ablation_saliency"),
    params:
        ids=prep("train_aug"),
        gt=prep("masks"),
        # only what the source reads: a changed sigma remakes the centre prior alone
        source_params=lambda wildcards: settings.generated_saliency(config, wildcards.source),
    script:
        "../scripts/ablation_saliency.py"


rule table_ablation:
    """results/tables/ablation_{ablation}.csv: EPS pseudo-mask mIoU per grid point."""
    input:
        results=ablation_results,
    output:
        table=report(results.path("ablation_table"), caption="../report/ablation_table.rst", category="Ablations"),
    log:
        "logs/table_ablation/{ablation}.log",
    benchmark:
        "benchmarks/table_ablation/{ablation}.tsv"
    wildcard_constraints:
        **ABLATION_WILDCARDS,
    conda:
        ENV
    threads: job_threads("table_ablation")
    resources:
        **job_resources("table_ablation"),
    params:
        points=ablation_points,
    script:
        "../scripts/table_ablation.py"


rule figure_ablation:
    """results/figures/ablation_{ablation}.png: the ablation table drawn (line over τ/λ, bars for saliency)."""
    input:
        table=results.path("ablation_table"),
    output:
        figure=report(results.path("ablation_figure"), caption="../report/fig_ablation.rst", category="Ablations"),
    log:
        "logs/figure_ablation/{ablation}.log",
    benchmark:
        "benchmarks/figure_ablation/{ablation}.tsv"
    wildcard_constraints:
        **ABLATION_WILDCARDS,
    conda:
        ENV
    threads: job_threads("figure_ablation")
    resources:
        **job_resources("figure_ablation"),
    script:
        "../scripts/figure_ablation.py"
