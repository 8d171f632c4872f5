"""Rule import_classifier: a given classifier file (project or official layout) as
results/classifier/<name>/model.pt."""

from wsss.core.runlog import log_to
from wsss.models.official import import_classifier

with log_to(snakemake.log[0]):
    import_classifier(snakemake.input.checkpoint, snakemake.wildcards.classifier,
                      list(snakemake.params.classes), snakemake.output.model)
