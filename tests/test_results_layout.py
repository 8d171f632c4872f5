"""The results layout has one home (wsss.core.results): the rule files write no results/ path of
their own, every result the DAG plans is an entry of the layout, and its hints name real rules."""

from __future__ import annotations

import re

from conftest import REPO, snakemake
from wsss.core import results

RULE_FILES = sorted((REPO / "workflow").rglob("*.smk")) + [REPO / "workflow" / "Snakefile"]


def literal_results_paths(text: str) -> list[str]:
    """`results/...` string literals in rule-file code (docstrings and comments are prose)."""
    code = re.sub(r'"""(.|\n)*?"""', "", text)
    code = "\n".join(line.split("#", 1)[0] for line in code.splitlines())
    return re.findall(r"""f?["']results/[^"']*["']""", code)


def test_rule_files_take_every_results_path_from_the_layout():
    found = {str(f.relative_to(REPO)): lits for f in RULE_FILES if (lits := literal_results_paths(f.read_text()))}
    assert found == {}


def test_a_literal_path_in_a_rule_is_caught():
    text = '''rule x:
    """Writes results/tables/x.csv (prose)."""
    output:
        table="results/tables/x.csv",  # a second home
        other=results.path("table", table="y"),
'''
    assert literal_results_paths(text) == ['"results/tables/x.csv"']


def test_path_fills_the_wildcards_given_and_keeps_the_others():
    assert results.path("cams") == "results/{variant}cams/{classifier}"
    assert results.path("cams", variant="") == "results/cams/{classifier}"
    assert results.path("cams", variant="ablation/tau-0.3/", classifier="eps") == "results/ablation/tau-0.3/cams/eps"
    assert results.path("table", table="miou") == "results/tables/miou.csv"


def test_every_planned_result_is_in_the_layout_and_its_rule_exists(tmp_path):
    """The whole default DAG with its ablations: each results/ output matches an entry, and the rule
    the entry names for it is a rule of the workflow."""
    proc = snakemake("-n", "all", "ablations", "--list-rules", workdir=tmp_path)
    rules = set(proc.stdout.split())
    proc = snakemake("-n", "all", "ablations", workdir=tmp_path)
    outputs = {o.strip() for line in proc.stdout.splitlines() if line.strip().startswith("output:")
               for o in line.split(":", 1)[1].split(",")}
    planned = sorted(o for o in outputs if o.startswith("results/"))
    assert len(planned) > 100
    unknown = [o for o in planned if results.rerun_rules(o) is None]
    assert unknown == []
    named = {rule for o in planned for rule, when in results.rerun_rules(o) if not when}
    assert named - rules == set(), "the layout names rules the workflow does not have"
