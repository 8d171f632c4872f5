# Ablation stage: the paper's ablations (wsss.stages.ablation). Every grid point is a full EPS run by the
# classifier stage's own rules under results/ablation/<name>-<value>/ (one train_classifier job per
# point, so on SLURM each point is its own job); table_ablation gathers the points' pseudo-mask
# mIoU, figure_ablation draws it. Not in `rule all` unless ablation.in_all names it: build them
# with `make ablations` or `snakemake ablations` (or one table: results/tables/ablation_tau.csv).

ABL = config["ablation"]
ABLATION_WILDCARDS = {"ablation": "|".join(ablation.ABLATIONS)}


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




rule ablations:
    """Every ablation with a non-empty grid: tables and figures."""
    input:
        ablation_targets([name for name in ablation.ABLATIONS if ABL[name]]),


rule ablation_saliency:
    """Saliency maps of source {source} (ground-truth foreground or centre prior) for every train_aug id."""
    input:
        prepared=PREP,
    output:
        maps=directory("results/ablation/saliency_maps/{source}"),
    wildcard_constraints:
        source="|".join(ablation.GENERATED_SALIENCY),
    params:
        ids=prep("train_aug"),
        gt=prep("masks"),
        # only what the source reads: a changed sigma remakes the centre prior alone
        source_params=lambda wildcards: (
            {"centre_prior_sigma": SAL["centre_prior_sigma"]} if wildcards.source == "centre_prior" else {}
        ),
    log:
        "logs/ablation_saliency/{source}.log",
    benchmark:
        "benchmarks/ablation_saliency/{source}.tsv"
    conda:
        ENV
    threads: job_threads("ablation_saliency")
    resources:
        **job_resources("ablation_saliency"),
    script:
        "../scripts/ablation_saliency.py"


rule table_ablation:
    """results/tables/ablation_{ablation}.csv: EPS pseudo-mask mIoU per grid point."""
    input:
        results=ablation_results,
    output:
        table=report(
            "results/tables/ablation_{ablation}.csv", caption="../report/ablation_table.rst", category="Ablations"
        ),
    wildcard_constraints:
        **ABLATION_WILDCARDS,
    params:
        points=ablation_points,
    log:
        "logs/table_ablation/{ablation}.log",
    benchmark:
        "benchmarks/table_ablation/{ablation}.tsv"
    conda:
        ENV
    threads: job_threads("table_ablation")
    resources:
        **job_resources("table_ablation"),
    script:
        "../scripts/table_ablation.py"


rule figure_ablation:
    """results/figures/ablation_{ablation}.png: the ablation table drawn (line over τ/λ, bars for saliency)."""
    input:
        table="results/tables/ablation_{ablation}.csv",
    output:
        figure=report(
            "results/figures/ablation_{ablation}.png", caption="../report/fig_ablation.rst", category="Ablations"
        ),
    wildcard_constraints:
        **ABLATION_WILDCARDS,
    log:
        "logs/figure_ablation/{ablation}.log",
    benchmark:
        "benchmarks/figure_ablation/{ablation}.tsv"
    conda:
        ENV
    threads: job_threads("figure_ablation")
    resources:
        **job_resources("figure_ablation"),
    script:
        "../scripts/figure_ablation.py"
