# Helpers shared by all the .smk files (paths, id lists, input functions).
# NB for editors: snakemake --lint takes the word r-u-l-e, a space, then any text and a colon on one line, as a rule definition. Avoid that in comments of this file.
# Rule files use these names; the wsss package never builds paths itself.
import os

ROOT = config["dataset"]["root"]
SOURCE = config["dataset"]["source"]
DOWNLOADS = config["dataset"]["downloads"]
SHARDS = list(range(config["shards"]))
ENV = "../../envs/wsss.yaml"

# The prepared dataset: the one layout every stage after prepare_dataset reads.
PREP = f"{ROOT}/prepared"


def prep(name):
    """A path inside the prepared dataset (for params: the rule's input is PREP itself)."""
    sub = {
        "images": "JPEGImages",
        "masks": "SegmentationClassAug",
        "boundaries": "boundaries",
        "labels": "labels.csv",
        "classes": "classes.txt",
        "train_aug": "lists/train_aug.txt",
        "train": "lists/train.txt",
        "val": "lists/val.txt",
    }[name]
    return f"{PREP}/{sub}"


# Raw layout folders (outputs of synthesize_dataset or of the extract rules).
RAW_VOC = f"{ROOT}/VOCdevkit"
RAW_SBD = f"{ROOT}/benchmark_RELEASE"
RAW_DUTS = f"{ROOT}/DUTS-TR"
RAW_CONTEXT = f"{ROOT}/context"


def final_targets():
    """What `snakemake` with no target builds: every stage that exists, to its tables."""
    targets = [PREP]
    targets += STAGE_TARGETS
    return targets


# Stage rule files append their final outputs here (evaluated when `rule all` is parsed,
# after every include).
STAGE_TARGETS = []
