"""wsss: the library behind the eps-workflow Snakemake workflow.

Modules never build paths: every path is an argument, owned by a Snakemake rule
(or by the caller of the CLI).
"""

__version__ = "0.1.0"
