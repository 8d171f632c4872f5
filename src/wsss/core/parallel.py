"""The one process pool of the package: per-image work split into chunks over worker processes.

Every per-image stage (evaluation, pseudo-masks, the CAM sweep, CRF, dataset preparation) uses it.
Results never depend on the number of processes: chunks are fixed slices of the id list and their
results are combined in chunk order (integer sums, or files written per image).
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Callable, Iterable, Sequence, TypeVar

T = TypeVar("T")


def chunks(items: Sequence[T], processes: int, per_process: int = 4) -> list[list[T]]:
    """`items` in `per_process` strided chunks per process (one chunk when serial), none empty.

    A few chunks per process, not one task per image: each task returns one small result, so the
    pickling cost is negligible and the decoding, the actual work, scales with the cores.
    """
    n = 1 if processes <= 1 else processes * per_process
    items = list(items)
    return [items[k::n] for k in range(n) if items[k::n]]


def in_item_order(rows, processes: int):
    """Rows of results in `chunks(items, processes)`' order (a numpy array, one row per item), put back
    in the items' order: the chunks are strided, so with a pool and more items than chunks they
    interleave the items."""
    out = rows.copy()
    out[[k for chunk in chunks(range(len(rows)), processes) for k in chunk]] = rows
    return out


def make_pool(processes: int):
    """A process pool started with fork where the platform has it.

    Snakemake runs scripts as a temporary __main__ without an `if __name__ == "__main__"` guard,
    which spawn would re-execute in every worker; the workers touch numpy/PIL/pydensecrf only, so
    forking a torch-importing parent is safe, and fork avoids re-importing them per worker.
    """
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    return mp.get_context(method).Pool(processes)


def map_chunks(fn: Callable, chunk_args: list, processes: int) -> list:
    """[fn(a) for a in chunk_args], in a process pool when processes > 1 (results in order)."""
    if processes <= 1 or len(chunk_args) <= 1:
        return [fn(a) for a in chunk_args]
    with make_pool(processes) as pool:
        return pool.map(fn, chunk_args, chunksize=1)


def run_each(fn: Callable, jobs: Iterable, processes: int, desc: str, total: int | None = None) -> None:
    """fn(job) for every job (one task per job: costs differ per image), with a progress bar."""
    from tqdm import tqdm

    jobs = list(jobs)
    if processes <= 1 or len(jobs) <= 1:
        for job in tqdm(jobs, desc=desc, mininterval=5):
            fn(job)
        return
    with make_pool(processes) as pool:
        for _ in tqdm(pool.imap_unordered(fn, jobs, chunksize=1), total=len(jobs), desc=desc, mininterval=5):
            pass
