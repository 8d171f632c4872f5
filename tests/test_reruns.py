"""Each job is handed exactly the settings it reads (issue 33): on a finished tiny run, every leaf of the
resolved config (tests/schema_leaves.py: ~280 numbers, strings, booleans, lists), changed alone, plans
exactly the jobs that READERS below says read it, and the jobs downstream of them; job sizes plan nothing.

For each leaf, with Snakemake's own plan (tests/rerun_planner.py, in process):
- every job planned for a reason of its own (params, input set, missing output: not only "input files
  updated by another job") is a declared reader: no job is handed a key it does not read;
- every declared reader is planned: no job reads a key it is not handed (its result would go stale);
- nothing is planned but the readers and the jobs downstream of them (the finished run's DAG).
A leaf that changes the DAG's shape (shards, the methods, a split) is STRUCTURAL: its new jobs have no
place in the finished run's DAG, so only the first check applies. A leaf the workflow refuses on a
finished run says why (REFUSED). A new schema key matches no pattern and fails the test until its
readers are declared here.
"""

from __future__ import annotations

import fnmatch
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest
from rerun_planner import PlanError, direct, downstream, plan
from schema_leaves import changed, leaves, with_changed

from conftest import TINY
from wsss.config.load import load_config

# Leaf pattern (fnmatch on the dotted path; first match wins) -> the jobs that read it: "rule" or
# "rule[wildcard=value,...]". An empty tuple: no job of the tiny run reads it (sizes, other sources'
# settings, switches of stages it does not run), so changing it plans nothing.
READERS: list[tuple[str, tuple[str, ...]]] = [
    ("jobs.*", ()),  # sizes are resources, never params
    ("weights.*", ()),  # the tiny run downloads no weights
    ("dataset.downloads", ()),
    ("dataset.voc.*", ()),
    ("dataset.coco14.*", ()),
    ("dataset.synthetic.*", ("synthesize_dataset",)),
    ("seed", ("train_saliency", "train_classifier", "train_segmentation")),
    ("device", ("train_saliency", "train_classifier", "train_segmentation")),
    ("saliency.released_archive", ()),  # source pfan: the import and release stages do not run
    ("saliency.precomputed_dir", ()),
    ("saliency.resize_mismatched", ()),
    ("saliency.binary_maps", ()),
    ("saliency.duts_*", ()),  # the synthetic source brings its own saliency training set
    ("saliency.holdout", ("train_saliency", "evaluate_saliency")),
    ("saliency.centre_prior_sigma", ("evaluate_saliency",)),
    ("saliency.model.*", ("train_saliency",)),
    ("saliency.train.*", ("train_saliency",)),
    ("saliency.infer.batch_size", ("infer_saliency", "evaluate_saliency")),
    ("classifier.head_dropout", ("train_classifier[classifier=cam]",)),  # the baseline's own key
    ("classifier.saliency_resize", ("train_classifier[classifier=eps]",)),
    ("classifier.tau", ("train_classifier[classifier=eps]",)),
    ("classifier.lam", ("train_classifier[classifier=eps]",)),
    ("classifier.sal_warmup", ("train_classifier[classifier=eps]",)),
    ("classifier.skip_unclaimed", ("train_classifier[classifier=eps]",)),
    ("classifier.infer.scales.cam", ("infer_cams[classifier=cam]",)),
    ("classifier.infer.flip.cam", ("infer_cams[classifier=cam]",)),
    ("classifier.infer.scales.eps", ("infer_cams[classifier=eps]",)),
    ("classifier.infer.flip.eps", ("infer_cams[classifier=eps]",)),
    ("classifier.infer.keep_maps", ()),  # what stays on disk, not what is computed
    ("classifier.infer.maps_in_flight", ()),
    ("classifier.infer.*", ("infer_cams",)),
    ("classifier.checkpoint", "STRUCTURAL", ("import_classifier[classifier=eps]",)),
    ("classifier.*", ("train_classifier",)),
    ("pseudo_masks.eps_rule", ("infer_cams[classifier=eps]", "make_pseudo_masks[method=eps]")),
    ("pseudo_masks.threshold", ("make_pseudo_masks", "cam_threshold_sweep", "refine_crf[method=eps]")),
    ("pseudo_masks.saliency_threshold", ("make_pseudo_masks[method=cam_sal]",)),
    ("pseudo_masks.released_archive", ()),  # method `released` is not in the run
    ("pseudo_masks.sweep", ("cam_threshold_sweep_shard", "cam_threshold_sweep")),
    ("crf.gt_prob", ("refine_crf[method=cam]", "refine_crf[method=cam_sal]")),
    ("crf.unary", ("refine_crf[method=eps]",)),
    ("crf.*", ("refine_crf", "infer_segmentation")),
    ("deeplab.infer_scales", ("infer_segmentation",)),
    ("deeplab.infer_flip", ("infer_segmentation",)),
    ("deeplab.methods", "STRUCTURAL", ("table_miou", "table_intervals", "figure_losses", "figure_qualitative")),
    ("deeplab.train_on_crf", "STRUCTURAL", ("train_segmentation", "refine_crf")),
    ("deeplab.*", ("train_segmentation",)),
    ("evaluation.boundary_tolerance", ("evaluate_shard[kind=boundary]",)),
    ("evaluation.confusion_pairs", ("evaluate_shard[kind=confusion_ratio]", "table_intervals")),
    ("evaluation.figure_ids_train", ("figure_qualitative[split=pseudo]",)),
    ("evaluation.figure_ids_val", ("figure_qualitative[split=deeplab]",)),
    ("evaluation.figure_count", ("figure_qualitative",)),
    ("evaluation.loss_smoothing", ("figure_losses",)),
    ("evaluation.bootstrap.*", ("table_intervals",)),
    ("evaluation.context_*", ()),  # the synthetic source has its own scene labels
    ("evaluation.shards", "STRUCTURAL", ("evaluate_shard",)),
    ("evaluation.pseudo_mask_split", "STRUCTURAL", ("evaluate_shard", "cam_threshold_sweep_shard",
                                                    "figure_qualitative")),
    ("evaluation.segmentation_split", "STRUCTURAL", ("evaluate_shard", "figure_qualitative")),
    ("evaluation.tables.*", "STRUCTURAL", ("table_miou", "table_boundary", "table_confusion_ratio",
                                           "table_intervals")),
    ("ablation.in_all", "STRUCTURAL", ("train_classifier", "infer_cams", "make_pseudo_masks", "merge_pseudo_masks",
                                       "evaluate_shard", "evaluate_miou", "table_ablation", "figure_ablation")),
    ("ablation.*", ()),  # the ablation tables are not in the default target
    ("shards", "STRUCTURAL", ("infer_saliency", "infer_cams", "make_pseudo_masks", "refine_crf",
                              "cam_threshold_sweep_shard")),
    ("methods", "STRUCTURAL", ("table_miou", "table_boundary", "table_confusion_ratio", "table_intervals",
                               "figure_losses", "figure_qualitative")),
    ("dataset.root", "STRUCTURAL", ("synthesize_dataset", "prepare_dataset", "train_saliency", "train_classifier",
                                    "train_segmentation")),
    ("saliency.source", "STRUCTURAL", ("download_weights", "verify_weights", "extract_released_saliency",
                                       "import_precomputed_saliency")),
    ("saliency.checkpoint", "STRUCTURAL", ("infer_saliency", "evaluate_saliency")),
    # refused on a finished run, with the reason
    ("dataset.source", "STRUCTURAL", ("download_voc", "download_sbd", "download_duts", "download_context",
                                       "extract_voc", "extract_sbd", "extract_duts", "prepare_context",
                                       "train_saliency", "table_paper")),
    ("dataset.classes", "REFUSED", "differs from the classes the prepared data was made with"),
]
# Files a changed leaf points at (schema_leaves.CHANGED): the user's, so no rule makes them.
USER_FILES = ["elsewhere/pfan.pth", "elsewhere/vgg16.pth", "elsewhere/backbone.pth", "elsewhere/init.pth",
              "elsewhere/eps.pth"]


def expectation(path: str):
    for entry in READERS:
        if fnmatch.fnmatchcase(path, entry[0]):
            return ("READS", entry[1]) if len(entry) == 2 else (entry[1], entry[2])
    raise AssertionError(f"{path}: no entry in READERS; declare the jobs that read it")


def matches(job: tuple[str, str], spec: str) -> bool:
    rule, _, filters = spec.partition("[")
    if job[0] != rule:
        return False
    wildcards = dict(part.split("=", 1) for part in job[1].split(", ") if "=" in part)
    return all(wildcards.get(k) == v for k, v in (f.split("=", 1) for f in filters.rstrip("]").split(",") if f))


def _plan(args):
    workdir, config = args
    try:
        return plan(workdir, [TINY], config)
    except PlanError as exc:
        return exc


@pytest.fixture(scope="module")
def finished(tiny_run):
    for name in USER_FILES:
        (tiny_run / name).parent.mkdir(parents=True, exist_ok=True)
        (tiny_run / name).write_bytes(b"")
    return tiny_run


def test_every_leaf_reruns_exactly_the_jobs_that_read_it(finished):
    config = load_config(TINY)
    cases = [(".".join(keys), keys, changed(keys, value, node)) for keys, value, node in leaves(config)]
    assert len(cases) > 250  # the walk reached the nested sections and each job size
    unread = [(p, k, v) for p, k, v in cases if expectation(p) == ("READS", ())]
    probed = [(p, k, v) for p, k, v in cases if expectation(p) != ("READS", ())]
    # The unread leaves all at once: nothing planned by all means nothing planned by each.
    everything_unread = config
    for _, keys, value in unread:
        everything_unread = with_changed(everything_unread, keys, value)
    work = [(finished, config), (finished, everything_unread)] + [(finished, with_changed(config, k, v))
                                                                 for _, k, v in probed]
    # Snakemake runs in the worker processes only: its API leaves threads behind in the process that calls
    # it, and a later test's fork()ed pool would inherit their locks held (a deadlock)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver")) as pool:
        dag = pool.submit(downstream, finished, [TINY], config)
        baseline, unread_plan, *plans = pool.map(_plan, work)
        below = dag.result()
    assert baseline == {}, f"the finished run is not finished: {baseline}"
    assert unread_plan == {}, f"leaves no job reads planned {sorted(unread_plan)}"
    problems = []
    for (path, _, value), jobs in zip(probed, plans):
        kind, expected = expectation(path)
        if kind == "REFUSED":
            if not (isinstance(jobs, PlanError) and expected in str(jobs)):
                problems.append(f"{path} = {value!r}: expected a refusal naming '{expected}', got {jobs}")
            continue
        if isinstance(jobs, PlanError):
            problems.append(f"{path} = {value!r}: refused: {str(jobs)[:500]}")
            continue
        own = direct(jobs)
        strays = sorted(job for job in own if not any(matches(job, spec) for spec in expected))
        if strays:
            problems.append(f"{path} = {value!r}: planned for a reason of their own, not declared readers: {strays}")
        if kind == "STRUCTURAL":
            continue
        readers = {job for job in below if any(matches(job, spec) for spec in expected)}
        missing = sorted(readers - set(jobs))
        if missing or not readers:
            problems.append(f"{path} = {value!r}: declared readers not planned: {missing or expected}")
        allowed = readers.union(*(below[job] for job in readers))
        extra = sorted(set(jobs) - allowed)
        if extra:
            problems.append(f"{path} = {value!r}: planned outside its readers and their downstream jobs: {extra}")
    assert not problems, "\n".join(problems)
