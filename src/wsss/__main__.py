"""Command line use without Snakemake: `python -m wsss <command> ...` (or the `wsss` script).

The workflow is the recommended way to run the pipeline; these commands expose the same stage
functions for one-off use (e.g. preparing VOC once on a login node).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

# The embedded default: what `synthesize` writes without --config.
REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "config.yaml"


def _synthesize(args) -> None:
    from wsss.config.load import load_config
    from wsss.core.schema import from_section
    from wsss.data.layout import raw
    from wsss.data.sources import voc
    from wsss.data.sources.synthetic.generate import SyntheticConfig, synthesize_dataset

    cfg = load_config(args.config or REPO_CONFIG)["dataset"]
    syn = from_section(SyntheticConfig, cfg["synthetic"])
    r = args.root
    print(synthesize_dataset(voc.raw(r, "voc"), voc.raw(r, "sbd"), raw(r, "duts"), raw(r, "context"), cfg["classes"],
                             syn))


def _prepare(args) -> None:
    from wsss.config.load import load_config
    from wsss.data.sources.voc.prepare import prepare_dataset

    classes = load_config(args.config)["dataset"]["classes"]
    print(prepare_dataset(args.voc, args.sbd, args.out, classes, processes=args.processes))


def _download(args) -> None:
    from wsss.data.download import download

    download(args.url, args.out, args.md5)


def _convert_mxnet(args) -> None:
    from wsss.models.resnet38d import convert_mxnet

    print(f"{convert_mxnet(args.params, args.out)} tensors written to {args.out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wsss", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synthesize", help="write the synthetic benchmark in VOC + SBD layout under ROOT")
    p.add_argument("root")
    p.add_argument("--config", help="a workflow config file (its dataset section; default: the embedded default)")
    p.set_defaults(func=_synthesize)
    p = sub.add_parser("prepare", help="build the prepared layout from VOCdevkit/ and benchmark_RELEASE/")
    p.add_argument("voc")
    p.add_argument("sbd")
    p.add_argument("out")
    p.add_argument("--config", required=True, help="a workflow config file (for dataset.classes)")
    p.add_argument("--processes", type=int, default=1)
    p.set_defaults(func=_prepare)
    p = sub.add_parser("download", help="checksummed, resumable download")
    p.add_argument("url")
    p.add_argument("out")
    p.add_argument("md5")
    p.set_defaults(func=_download)
    p = sub.add_parser("convert-mxnet", help="MXNet ResNet-38 .params → torch state dict (resnet38d layout)")
    p.add_argument("params", help="e.g. ilsvrc-cls_rna-a1_cls1000_ep-0001.params")
    p.add_argument("out", help="the .pth to write")
    p.set_defaults(func=_convert_mxnet)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
