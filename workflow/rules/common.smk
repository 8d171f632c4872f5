# Shared by the whole workflow: the registries, the prepared layout, the weights stage's records,
# wildcard constraints, job sizes and the list of final targets. Each stage's settings, input functions
# and targets are in rules/inputs/<stage>.smk; decisions that build no paths are wsss.config.plan's.
# NB for editors: snakemake --lint takes the word r-u-l-e, a space, then any text and a colon on one line, as a rule definition. Avoid that in comments of this file.
import os
import re

from wsss import methods
from wsss.config import plan, settings
from wsss.core import results
from wsss.core.schema import weights_table
from wsss.data import layout
from wsss.stages import ablation

SOURCE = plan.data_source(config)  # the data source's record (wsss.data.sources)
ROOT = config["dataset"]["root"]
DOWNLOADS = config["dataset"]["downloads"]
SHARDS = list(range(config["shards"]))
ENV = os.path.abspath(f"{WORKFLOW_DIR}/../envs/wsss.yaml")  # WORKFLOW_DIR: the workflow folder (Snakefile)
# GPUs a GPU-capable job asks for: none when the config pins the CPU (device: cpu), so such a run
# neither waits for GPU tokens nor asks SLURM for GPUs; otherwise one (gpu=N>1 via set-resources).
GPU = 0 if str(config["device"]).startswith("cpu") else 1

# The prepared dataset: the one layout every stage after the data source reads.
PREP = layout.prepared(ROOT)


def prep(name):
    """A path inside the prepared dataset (for params: the rule's input is PREP itself)."""
    return layout.prepared(ROOT, name)


# PFAN's training set and the confusion-ratio table's scene labels: the source's own folders, or
# the ones rules/duts.smk and rules/context.smk download.
SALIENCY_SET = layout.raw(ROOT, "duts") if SOURCE.saliency_set == "own" else layout.SHARED_DUTS
SCENE_LABELS = layout.raw(ROOT, "context")


# {classifier}: a localization classifier (cam, eps); {method}: a mask source (cam, cam_sal, eps
# and gt, the ground truth). Rules that make pseudo-masks narrow {method} to MASK_METHODS.
MASK_METHODS = "|".join(methods.pseudo_mask_methods())
NONE = "(?!x)x"  # a regex that matches nothing: keeps a rule out when its list is empty


wildcard_constraints:
    classifier="|".join(methods.CLASSIFIERS),
    method="|".join(methods.METHODS),
    shard=r"\d+",
    # "" (the configured run) or ablation/<name>-<value>/ (a grid point of an ablation: wsss.stages.ablation)
    variant=ablation.VARIANT_RE,


def job_threads(rule_name):
    """A rule's threads: the config's `jobs` section (wsss.config.settings.job_size)."""
    return settings.job_size(config, rule_name)["threads"]


def job_resources(rule_name):
    """A rule's mem_mb and runtime: the config's `jobs` section, never its params."""
    size = settings.job_size(config, rule_name)
    return {"mem_mb": size["mem_mb"], "runtime": size["runtime"]}


# ---- weights: every pretrained file of weights.files comes from the weights stage -------------
WEIGHTS_DIR = config["weights"]["dir"]
WEIGHTS = weights_table(config)  # the schema's table plus the config's own entries
WEIGHTS_RE = "|".join(re.escape(name) for name in WEIGHTS) or NONE


def weights_record(path):
    """The verification record a job that reads weights file `path` depends on: the weights stage
    downloads (or verifies) every file of weights.files; any other path is the user's (checked to
    exist when the config loads), and a torchvision weights name or null needs nothing."""
    if not path:
        return []
    path = os.path.normpath(str(path))
    if os.path.dirname(path) == os.path.normpath(WEIGHTS_DIR) and os.path.basename(path) in WEIGHTS:
        return f"{WEIGHTS_DIR}/.verified/{os.path.basename(path)}.json"
    return []


# Each stage's rule file appends its final outputs; `rule all` reads them after every include.
STAGE_TARGETS = [PREP]
