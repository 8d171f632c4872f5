"""Which jobs a config asks for, and in which order they should run: decisions that build no paths.

The rule files turn these into paths and input functions; keeping the decisions here makes them
testable without Snakemake (tests/test_plan.py). Nothing here imports torch.
"""

from __future__ import annotations

from wsss.config.settings import crf_saliency_gated, crf_unary
from wsss.data.sources import Source, source
from wsss.methods.registry import CLASSIFIERS, METHODS, method

STAGES = ("pseudo", "pseudo_crf", "deeplab", "deeplab_crf")


def data_source(config: dict) -> Source:
    return source(config["dataset"]["source"])


def used_classifiers(config: dict) -> list[str]:
    """The classifiers the configured methods read, in registry order."""
    used = {method(m).classifier for m in config["methods"]}
    return [c for c in CLASSIFIERS if c in used]


def imported_classifiers(config: dict) -> list[str]:
    """Classifiers given as files (classifier.checkpoint): imported, not trained."""
    return [c for c in CLASSIFIERS if c in config["classifier"]["checkpoint"]]


def eval_methods(config: dict, stage: str) -> list[str]:
    """The methods that have predictions at `stage`: pseudo-mask sources, or DeepLab's training sources."""
    return list(config["methods"] if stage.startswith("pseudo") else config["deeplab"]["methods"])


def eval_split(config: dict, stage: str) -> str:
    """The prepared id list a stage is scored on."""
    evaluation = config["evaluation"]
    return evaluation["pseudo_mask_split"] if stage.startswith("pseudo") else evaluation["segmentation_split"]


def tables(config: dict) -> list[str]:
    """The result tables of a full run: those the data source can feed. PASCAL-Context scene labels
    are downloaded only with their checksums set, so a VOC run without them ends with the others."""
    names = data_source(config).tables()
    evaluation = config["evaluation"]
    if data_source(config).scene_labels == "pascal_context" and not (
            evaluation["context_md5"] and evaluation["context_labels_md5"]):
        names.remove("confusion_ratio")
    return names


def crf_split(config: dict) -> str:
    """The id list refine_crf refines: train_aug when DeepLab trains on the CRF masks, else only the
    split that the pseudo_crf tables and the qualitative figure read (VOC: 1,464 of 10,582)."""
    return "train_aug" if config["deeplab"]["train_on_crf"] else config["evaluation"]["pseudo_mask_split"]


def crf_source(config: dict, name: str) -> str:
    """The method whose refine_crf shards `name`'s CRF masks are: with an ungated `probs` unary the
    CRF reads only the classifier's maps (not the pseudo-mask), so such methods of one classifier
    get identical masks, and the first of them in `methods` is refined once for all. A
    saliency-gated unary (cam_sal) is the method's own."""
    record = method(name)
    if crf_unary(config, record) != "probs" or record.classifier is None or crf_saliency_gated(config, record):
        return name

    def shares(m: str) -> bool:
        other = method(m)
        return (crf_unary(config, other) == "probs" and other.classifier == record.classifier
                and not crf_saliency_gated(config, other))

    return next(m for m in [*config["methods"], name] if shares(m))


# ---- priorities: the longest chain of a run first --------------------------------------------
# saliency -> EPS classifier -> its maps, masks, CRF and DeepLab is the critical path: on two
# cores, jobs of the baseline scheduled before it delay the end of the run.
def chain_priority(classifier: str | None) -> int:
    """10 for a job downstream of a classifier that trains on the saliency maps, else 0."""
    return 10 if classifier is not None and CLASSIFIERS[classifier].trains_on_saliency else 0


def method_priority(name: str) -> int:
    return chain_priority(METHODS[name].classifier)


def deeplab_priority(name: str) -> int:
    """DeepLab jobs are the last long ones of a run: never behind CRF refinements that only the
    pseudo_crf tables read."""
    return max(5, method_priority(name))


def crf_priority(config: dict, name: str) -> int:
    """The CRF is on DeepLab's path only when DeepLab trains on its masks, and on the map files' when
    it reads them and they are deleted once read (a shard's maps wait for it); otherwise it goes last."""
    windowed = map_window(config, config["shards"]) is not None
    first = config["deeplab"]["train_on_crf"] or (crf_reads_maps(config, name) and windowed)
    return method_priority(name) if first else 0


# ---- map files: deleted once read, at most maps_in_flight shards of a classifier at once --------
def keep_maps(config: dict) -> bool:
    """classifier.infer.keep_maps: the map shards stay (and are merged into results/cams)."""
    return bool(config["classifier"]["infer"]["keep_maps"])


def crf_reads_maps(config: dict, name: str) -> bool:
    """refine_crf of `name` reads its classifier's map files (a `probs` unary)."""
    return method(name).classifier is not None and crf_unary(config, method(name)) == "probs"


def crf_methods(config: dict) -> list[str]:
    """The methods whose refine_crf shards a full run surely builds: every method when a table scores
    the pseudo_crf stage, DeepLab's training sources when it trains on the CRF masks; as the CRF
    source that makes them (crf_source)."""
    names = []
    if any("pseudo_crf" in config["evaluation"]["tables"][kind] for kind in tables(config)):
        names += config["methods"]
    if config["deeplab"]["train_on_crf"]:
        names += [m for m in config["deeplab"]["methods"] if not method(m).is_ground_truth]
    return list(dict.fromkeys(crf_source(config, m) for m in names))


def map_consumers(config: dict, classifier: str) -> dict[str, list[str]]:
    """The per-shard jobs of the configured run that read `classifier`'s map shards, by kind:
    pseudo (make_pseudo_masks), sweep (cam_threshold_sweep_shard), crf (refine_crf, probs unary)."""
    mine = [m for m in config["methods"] if method(m).classifier == classifier]
    return {"pseudo": [m for m in mine if method(m).pseudo_mask],
            "sweep": [m for m in mine if method(m).threshold_sweep],
            "crf": [m for m in crf_methods(config)
                    if method(m).classifier == classifier and crf_reads_maps(config, m)]}


def map_window(config: dict, shard: int) -> int | None:
    """The shard whose map consumers infer_cams of `shard` waits for (None: it waits for none), so
    that with keep_maps false at most maps_in_flight map shards of a classifier are on disk."""
    back = shard - config["classifier"]["infer"]["maps_in_flight"]
    return None if keep_maps(config) or back < 0 else back
