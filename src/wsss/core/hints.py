"""The command that regenerates a workflow file, for the fix hints of error messages.

"Delete it and re-run its rule" does not work for a file inside a directory output: Snakemake
does not rerun `prepare_dataset` while `resources/<ds>/prepared` still exists, however many files
inside it are gone. `snakemake --forcerun RULE` (-R) reruns the rule (and what depends on it) and
works for every output, so every hint names it.

A result's rule comes from the results layout (wsss.core.results); the raw and prepared data's
from the table below, to which each data source adds its raw files (`register_hint`). Patterns are
matched against the posix form of the path, anywhere in it (absolute paths and `--directory` work
dirs included); the first match wins.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from wsss.core.results import rerun_rules

# (pattern, [(rule, when)]) of the data every source shares: `when` says in which setting that rule
# is the one that writes the path ("" = always).
RULES: list[tuple[str, list[tuple[str, str]]]] = [
    (r"(^|/)prepared(/|$)", [("prepare_dataset", "")]),
    (r"(^|/)DUTS-TR(/|$)", [("extract_duts", "real DUTS-TR")]),
    (r"(^|/)DUTS-TR\.zip$", [("download_duts", "")]),
]

_COMPILED = [(re.compile(p), rules) for p, rules in RULES]


def register_hint(pattern: str, rule: str, when: str = "") -> None:
    """Add `rule` as a writer of the paths matching `pattern` (a data source's raw folders and
    archives: wsss.data.sources registers its record's hints); a known pattern gets one more rule."""
    for compiled, rules in _COMPILED:
        if compiled.pattern == pattern:
            if (rule, when) not in rules:
                rules.append((rule, when))
            return
    _COMPILED.insert(0, (re.compile(pattern), [(rule, when)]))


def rules_for(path: str | os.PathLike) -> list[tuple[str, str]]:
    """[(rule, when)] of the rule(s) that write `path`; [] when no pattern matches."""
    text = Path(path).as_posix()
    from_layout = rerun_rules(text)
    if from_layout is not None:
        return from_layout
    for pattern, rules in _COMPILED:
        if pattern.search(text):
            return list(rules)
    return []


def rerun_hint(path: str | os.PathLike) -> str:
    """How to regenerate `path`, e.g. "regenerate with `snakemake --forcerun prepare_dataset`".

    Paths no rule writes (user files, checkpoints) get a hint to replace the file.
    """
    text = Path(path).as_posix()
    if re.search(r"(^|/)resources/checkpoints(/|$)", text):
        # A checkpoint is no rule's output: without it the training rule simply starts over.
        return "delete it; the training rule then starts over"
    rules = rules_for(path)
    if not rules:
        return "replace the file (no workflow rule writes it), or regenerate it with the rule that produces it"
    options = [f"`snakemake --forcerun {rule}`" + (f" ({when})" if when else "") for rule, when in rules]
    verb = "re-extract" if rules[0][0].startswith("extract") else (
        "re-download" if rules[0][0].startswith("download") else "regenerate")
    return f"{verb} with " + " or ".join(options)
