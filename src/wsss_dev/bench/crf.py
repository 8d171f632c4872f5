"""CRF throughput: images/s with 1 and N worker processes over the same label maps.

`make bench` (the evaluation stage's harness) calls `bench_crf` and writes its rows into
results/bench/bench.csv. It measures; it asserts nothing, except that every process count
gives byte-identical outputs (a speed-up that changed the result would be worthless).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Sequence

from wsss.stages.crf import crf_config, refine_dir


def bench_crf(ids: Sequence[str], images_dir: str | os.PathLike, masks_dir: str | os.PathLike,
              processes: Sequence[int] = (1, 2), crf: dict | None = None, repeats: int = 1,
              labels: dict | None = None) -> list[dict]:
    """Refine `masks_dir/<id>.png` (labels unary) for `ids` with each process count in `processes`;
    one row per count: stage, processes, images, seconds (best of `repeats`, pool start-up
    included: a job pays it too), images_per_s, speedup over the first count.
    """
    cfg = crf_config(crf, unary="labels")
    rows, outputs = [], {}
    with tempfile.TemporaryDirectory(prefix="bench_crf.") as tmp:
        for n in processes:
            best = float("inf")
            for r in range(repeats):
                out = Path(tmp) / f"p{n}_r{r}"
                t0 = time.perf_counter()
                refine_dir(ids, images_dir, out, cfg, masks_dir=masks_dir, labels=labels, processes=n)
                best = min(best, time.perf_counter() - t0)
            outputs[n] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
            rows.append({"stage": "crf", "processes": n, "images": len(ids), "seconds": round(best, 4),
                         "images_per_s": round(len(ids) / best, 2) if best > 0 else float("nan")})
        reference = outputs[processes[0]]
        for row in rows:
            row["speedup"] = round(rows[0]["seconds"] / row["seconds"], 3) if row["seconds"] > 0 else float("nan")
            row["identical_output"] = outputs[row["processes"]] == reference
    return rows
