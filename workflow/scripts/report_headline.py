"""Rule report_headline: the report's first page, the same sections as make run's terminal summary."""

from pathlib import Path

from wsss.core.runlog import log_to
from wsss.stages.headline import write_html

with log_to(snakemake.log[0]):
    print(write_html(Path(snakemake.input.miou).parent, snakemake.output.page))
