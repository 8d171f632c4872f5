# The ablation stage's settings, input functions and final targets (its rules: rules/ablation.smk; kept
# apart because snakemake --lint wants rules and functions in separate files).
ABL = config["ablation"]
ABLATION_WILDCARDS = {"ablation": "|".join(ablation.ABLATIONS)}


def ablation_variants(name):
    """The variant folder of each point of ablation `name`, in grid order."""
    if ablation.CLASSIFIER in IMPORTED:
        raise WorkflowError(
            f"the {name} ablation trains {ablation.CLASSIFIER} classifiers, but classifier.checkpoint "
            f"imports {ablation.CLASSIFIER}: drop classifier.checkpoint.{ablation.CLASSIFIER} to run it"
        )
    if not ABL[name]:
        raise WorkflowError(f"ablation.{name} is empty: give it the values to compare (config/README.md, `ablation`)")
    return [ablation.variant(name, v, CLS) for v in ABL[name]]


def ablation_results(wildcards):
    """Input function of table_ablation: each point's pseudo-mask mIoU result."""
    return [
        results.path("eval_miou", variant=v, stage="pseudo", method=ablation.METHOD)
        for v in ablation_variants(wildcards.ablation)
    ]


def ablation_points(wildcards):
    """Params of table_ablation: value, label and whether it is the configured run, per point."""
    return [
        {
            "value": ablation.format_value(v),
            "label": ablation.point_label(wildcards.ablation, v, config["saliency"]),
            "configured": ablation.is_configured(wildcards.ablation, v, CLS),
        }
        for v in ABL[wildcards.ablation]
    ]


def ablation_targets(names):
    """The table and figure of each named ablation."""
    return [results.path(kind, ablation=n) for n in names for kind in ("ablation_table", "ablation_figure")]


STAGE_TARGETS += ablation_targets(ABL["in_all"])
