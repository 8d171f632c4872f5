# The saliency stage's settings, input functions and final targets (its rules: rules/saliency.smk; kept
# apart because snakemake --lint wants rules and functions in separate files).
SAL = settings.saliency_files(config)
SAL_MODEL = results.path("saliency_model")
SAL_ID_LISTS = [prep("train_aug"), prep("val")]
RELEASED_MAPS = f"{ROOT}/released_saliency"
# The folder import_precomputed_saliency reads: the user's, or the released archive's maps.
IMPORTED_MAPS = RELEASED_MAPS if SAL.source == "released" else SAL.precomputed_dir


def saliency_model(wildcards=None):
    """Input function: the PFAN model file inference uses (saliency.checkpoint skips training)."""
    return SAL.checkpoint or SAL_MODEL


def saliency_shards(wildcards=None):
    """Input function of merge_saliency: every shard folder of PFAN inference."""
    return [results.path("saliency_shard", shard=s) for s in SHARDS]


STAGE_TARGETS += [results.path("saliency_maps")]
if SAL.source == "pfan":
    STAGE_TARGETS += [results.path("saliency_table")]
