# Data source `coco14` (MS-COCO 2014, the paper's second benchmark: wsss.data.sources.coco14): the three
# archives downloaded (resumable, checksummed, atomic) and extracted, the ground-truth masks either the
# authors' (the weights stage fetches their archive) or rasterised here one job per split x shard, then
# merged into <root>/prepared/.
from wsss.data.sources.coco14 import prepare as coco14_source

COCO = config["dataset"]["coco14"]
COCO_RAW = f"{ROOT}/{coco14_source.RAW_DIR}"
# Archive file name -> its key (train2014, val2014, annotations): the names are the host's own, so a
# mirror set in dataset.coco14.*_url still lands under them.
COCO_ZIPS = {os.path.basename(a.url): key for key, a in coco14_source.ARCHIVES.items()}
# Extracted folder (train2014, val2014, annotations) -> its archive's record.
COCO_MEMBERS = {a.member: a for a in coco14_source.ARCHIVES.values()}
# The masks prepare_dataset links: the authors' (extract_coco14_masks) or the merged conversion shards.
COCO_MASKS = f"{COCO_RAW}/{coco14_source.RELEASED_DIR}" if COCO["masks"] == "released" else f"{COCO_RAW}/converted"
# The raw data stored once: an archive is deleted once its folder is extracted and checked against it
# (dataset.coco14.keep_archives keeps them); the folder's manifest records that check.
COCO_ARCHIVE = f"{DOWNLOADS}/{{archive}}" if COCO["keep_archives"] else temp(f"{DOWNLOADS}/{{archive}}")
# With the archives deleted once checked, val2014.zip is downloaded only after train2014/ is checked: one
# image archive beside its folder at a time, ~28 GB at worst instead of ~41.
COCO_DOWNLOAD_AFTER = {} if COCO["keep_archives"] else {"val2014": "train2014"}


rule download_coco14:
    """Download {archive} of MS-COCO 2014 (train2014.zip, val2014.zip, annotations_trainval2014.zip): resumable, checksummed, atomic."""
    input:
        previous=lambda wildcards: [
            f"{COCO_RAW}/{member}.manifest.json"
            for member in [COCO_DOWNLOAD_AFTER.get(COCO_ZIPS[wildcards.archive])]
            if member
        ],
    output:
        archive=COCO_ARCHIVE,
    log:
        "logs/download_coco14/{archive}.log",
    benchmark:
        "benchmarks/download_coco14/{archive}.tsv"
    wildcard_constraints:
        archive="|".join(re.escape(name) for name in COCO_ZIPS),
    conda:
        ENV
    threads: job_threads("download_coco14")
    resources:
        **job_resources("download_coco14"),
    params:
        url=lambda wildcards: COCO[f"{COCO_ZIPS[wildcards.archive]}_url"],
        md5=lambda wildcards: COCO[f"{COCO_ZIPS[wildcards.archive]}_md5"],
    script:
        "../../scripts/download.py"


rule extract_coco14:
    """Extract {member}/ of its MS-COCO archive (of annotations/, only the two instances files), checked file by file against it."""
    input:
        archive=lambda wildcards: f"{DOWNLOADS}/{os.path.basename(COCO_MEMBERS[wildcards.member].url)}",
    output:
        folder=directory(f"{COCO_RAW}/{{member}}"),
        manifest=f"{COCO_RAW}/{{member}}.manifest.json",
    log:
        "logs/extract_coco14/{member}.log",
    benchmark:
        "benchmarks/extract_coco14/{member}.tsv"
    wildcard_constraints:
        member="|".join(coco14_source.SPLITS.values()),
    conda:
        ENV
    threads: job_threads("extract_coco14")
    resources:
        **job_resources("extract_coco14"),
    params:
        member=lambda wildcards: wildcards.member,
        names=lambda wildcards: COCO_MEMBERS[wildcards.member].names,
    script:
        "../../scripts/extract.py"


# The two instances files are read by the conversion and prepare_dataset only: deleted once those are done
# (~0.5 GB). A later change that reruns either extracts them again (from the archive, downloaded again
# unless dataset.coco14.keep_archives).
use rule extract_coco14 as extract_coco14_annotations with:
    output:
        folder=temp(directory(f"{COCO_RAW}/{{member}}")),
        manifest=f"{COCO_RAW}/{{member}}.manifest.json",
    wildcard_constraints:
        member="annotations",


rule extract_coco14_masks:
    """The EPS authors' MS-COCO 2014 masks (dataset.coco14.masks released) as <train2014|val2014>/<id>.png."""
    input:
        archive=COCO["released_masks"],
        verified=weights_record(COCO["released_masks"]),
    output:
        masks=directory(f"{COCO_RAW}/{coco14_source.RELEASED_DIR}"),
    log:
        "logs/extract_coco14_masks/extract_coco14_masks.log",
    benchmark:
        "benchmarks/extract_coco14_masks/extract_coco14_masks.tsv"
    conda:
        ENV
    threads: job_threads("extract_coco14_masks")
    resources:
        **job_resources("extract_coco14_masks"),
    script:
        "../../scripts/extract_coco14_masks.py"


rule convert_coco14:
    """Rasterise shard {shard} of the annotated {split} images' instances into label PNGs (dataset.coco14.masks convert)."""
    input:
        annotations=f"{COCO_RAW}/annotations",
        images=lambda wildcards: f"{COCO_RAW}/{coco14_source.SPLITS[wildcards.split]}",
    output:
        masks=directory(f"{COCO_RAW}/converted_shards/{{split}}/{{shard}}"),
    log:
        "logs/convert_coco14/{split}_{shard}.log",
    benchmark:
        "benchmarks/convert_coco14/{split}_{shard}.tsv"
    wildcard_constraints:
        split="|".join(coco14_source.SPLITS),
    conda:
        ENV
    threads: job_threads("convert_coco14")
    resources:
        **job_resources("convert_coco14"),
    params:
        # dataset.root, as the inputs' grandparent (not a hard-coded prefix: snakemake --lint)
        root=lambda wildcards, input: os.path.dirname(os.path.dirname(input.annotations)),
        num_shards=config["shards"],
    script:
        "../../scripts/convert_coco14.py"


rule merge_coco14_masks:
    """Hard-link the conversion shards of both splits into one folder of <id>.png."""
    input:
        shards=[f"{COCO_RAW}/converted_shards/{split}/{shard}" for split in coco14_source.SPLITS for shard in SHARDS],
    output:
        masks=directory(f"{COCO_RAW}/converted"),
    log:
        "logs/merge_coco14_masks/merge_coco14_masks.log",
    benchmark:
        "benchmarks/merge_coco14_masks/merge_coco14_masks.tsv"
    conda:
        ENV
    threads: job_threads("merge_coco14_masks")
    resources:
        **job_resources("merge_coco14_masks"),
    script:
        "../../scripts/merge_shards.py"


rule prepare_dataset:
    """MS-COCO 2014 into the prepared layout: the annotated images, their masks (checked), lists, image labels."""
    input:
        images=[f"{COCO_RAW}/{folder}" for folder in coco14_source.SPLITS.values()],
        annotations=f"{COCO_RAW}/annotations",
        masks=COCO_MASKS,
    output:
        prepared=directory(PREP),
    log:
        "logs/prepare_dataset/prepare_dataset.log",
    benchmark:
        "benchmarks/prepare_dataset/prepare_dataset.tsv"
    # Before train_saliency (as the VOC sources' prepare step): the classifiers wait for it.
    priority: 20
    conda:
        ENV
    threads: job_threads("prepare_dataset")
    resources:
        **job_resources("prepare_dataset"),
    params:
        # dataset.root, as the inputs' grandparent (not a hard-coded prefix: snakemake --lint)
        root=lambda wildcards, input: os.path.dirname(os.path.dirname(input.annotations)),
        classes=config["dataset"]["classes"],
        masks=COCO["masks"],
    script:
        "../../scripts/prepare_coco14.py"
