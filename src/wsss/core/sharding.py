"""Shards of per-image stages: a fixed, order-independent split of an id list."""

from __future__ import annotations

import os
from pathlib import Path


def shard_ids(ids: list[str], shard: int, num_shards: int) -> list[str]:
    """The ids of shard `shard` of `num_shards`: every num_shards-th id of the sorted list.

    Sorting first makes the split independent of list order; striding balances shards.
    """
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} out of range for {num_shards} shards")
    return sorted(ids)[shard::num_shards]


def shard_ids_within(ids: list[str], universe: list[str], shard: int, num_shards: int) -> list[str]:
    """The ids of `ids` that lie in shard `shard` of `universe` (sorted): a subset of the ids (e.g. the
    train split of train_aug) sharded as the universe is, so its shard s reads only the universe's
    shard s of an earlier stage (its pseudo-masks and map files). An id outside the universe is an error."""
    members = set(shard_ids(universe, shard, num_shards))
    outside = sorted(set(ids) - set(universe))
    if outside:
        raise ValueError(f"{len(outside)} id(s) outside the list they are sharded by, e.g. {outside[0]}")
    return sorted(i for i in ids if i in members)


def merge_dirs(shard_dirs: list[str | os.PathLike], out_dir: str | os.PathLike) -> int:
    """Hard-link (or copy across devices) every file of the shard dirs into `out_dir`, atomically.

    Two shards holding the same file name is an error: shards must partition the ids.
    Returns the number of files merged.
    """
    from wsss.core.io import atomic_dir, link_or_copy

    seen: dict[str, Path] = {}
    with atomic_dir(out_dir) as tmp:
        for d in shard_dirs:
            for src in sorted(Path(d).iterdir()):
                if src.name.startswith("."):
                    continue
                if src.name in seen:
                    raise RuntimeError(f"{src}: also in {seen[src.name]}; shards overlap — rerun the shard rules")
                seen[src.name] = src
                link_or_copy(src, tmp / src.name)
    return len(seen)
