"""Every module, function and file the docs and docstrings name exists where they say: a rename
that leaves a doc pointing at nothing fails here."""

from __future__ import annotations

import importlib
import re

from conftest import REPO

TEXTS = [REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "src").rglob("*.py"),
         *(REPO / "workflow").rglob("*.smk"), *(REPO / "workflow").rglob("*.py")]
DOTTED = re.compile(r"\b(wsss(?:_dev)?(?:\.[A-Za-z_]\w*)+)(?::([A-Za-z_]\w*))?")
# Backticked paths inside the repository; <placeholders>, {wildcards} and globs are patterns, not files.
PATH = re.compile(r"`((?:src|workflow|tests|config|docs|profiles|envs)/[\w./<>{}*-]+)`")


def resolves(dotted: str, attr: str | None) -> bool:
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ModuleNotFoundError:
            continue
        for name in parts[k:] + ([attr] if attr else []):
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def dangling_in(text: str) -> list[str]:
    """The names `text` gives that do not exist."""
    bad = [m.group(0) for m in DOTTED.finditer(text)
           if m.group(1) != "wsss.yaml" and not resolves(m.group(1), m.group(2))]  # wsss.yaml: envs/'s file
    for m in PATH.finditer(text):
        name = m.group(1).rstrip(".")
        if not any(c in name for c in "<>{}*") and not (REPO / name).exists():
            bad.append(name)
    return bad


def test_every_name_the_docs_give_exists():
    bad = {str(p.relative_to(REPO)): found for p in TEXTS if (found := dangling_in(p.read_text()))}
    assert bad == {}


def test_a_renamed_function_is_caught():
    text = ("The merge (`wsss.core.io.merge_dirs`, `workflow/scripts/merge_shard.py`), not "
            "`wsss.core.sharding.merge_dirs` in `workflow/scripts/merge_shards.py` nor wsss.stages.crf:refine_dirs.")
    assert dangling_in(text) == ["wsss.core.io.merge_dirs", "wsss.stages.crf:refine_dirs",
                                 "workflow/scripts/merge_shard.py"]
