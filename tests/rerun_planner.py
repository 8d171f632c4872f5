"""Snakemake's plan for a finished run under a changed config, computed in this process (a dry run
without the interpreter's start-up: ~0.5 s, against ~3 s for `snakemake -n` in a subprocess).

    plan(workdir, [config files], {"evaluation": {"boundary_tolerance": 3}})
      -> {(rule, wildcards): reason}  or raises PlanError with Snakemake's message

A job's reason is Snakemake's own ("Params have changed since last execution", "Input files updated
by another job: ...", "Missing output files: ..."); `direct` keeps the jobs planned for a reason of their
own, not only because a job upstream of them reruns.
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from pathlib import Path

import yaml

from conftest import SNAKEFILE

UPSTREAM = "Input files updated by another job"


class PlanError(Exception):
    pass


def _jobs(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """(rule, wildcards) -> the fields Snakemake printed for the job (reason, input, output, ...)."""
    jobs, rule, fields = {}, None, {}

    def close():
        if rule is not None:
            jobs[(rule, fields.get("wildcards", ""))] = fields

    for line in text.splitlines():
        head = re.match(r"^(?:local)?rule (\w+):$", line)
        if head:
            close()
            rule, fields = head.group(1), {}
            continue
        field = re.match(r"^    (\w+): (.*)$", line)
        if rule is not None and field:
            fields[field.group(1)] = field.group(2)
        elif rule is not None and not line.startswith(" "):
            close()
            rule, fields = None, {}
    close()
    return jobs


def _dry_run(workdir: Path, configfiles: list[Path], config: dict | None, forceall: bool = False) -> str:
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

    with tempfile.TemporaryDirectory() as tmp:
        files = list(configfiles)
        if config:
            overlay = Path(tmp) / "changed.yaml"
            overlay.write_text(yaml.safe_dump(config, sort_keys=False))  # params compare in key order
            files.append(overlay)
        out = io.StringIO()
        try:
            with contextlib.redirect_stderr(out), contextlib.redirect_stdout(out):
                with SnakemakeApi(OutputSettings(dryrun=True)) as api:
                    workflow = api.workflow(resource_settings=ResourceSettings(cores=2, resources={"gpu": 1}),
                                            config_settings=ConfigSettings(configfiles=files),
                                            snakefile=SNAKEFILE, workdir=workdir)
                    workflow.dag(DAGSettings(forceall=forceall)).execute_workflow(executor="dryrun")
        except Exception as exc:  # Snakemake's own (a config error, a missing input): the message is the point
            raise PlanError(f"{type(exc).__name__}: {exc}\n{out.getvalue()[-3000:]}") from None
    return out.getvalue()


def plan(workdir: Path, configfiles: list[Path], config: dict | None = None) -> dict[tuple[str, str], str]:
    """(rule, wildcards) -> Snakemake's reason, for every job a run with `config` on top would start."""
    return {job: fields.get("reason", "") for job, fields in _jobs(_dry_run(workdir, configfiles, config)).items()}


def downstream(workdir: Path, configfiles: list[Path], config: dict | None = None) -> dict[tuple, set[tuple]]:
    """job -> every job that reads, directly or not, what it writes: the whole DAG, from a forced dry run."""
    jobs = _jobs(_dry_run(workdir, configfiles, config, forceall=True))
    writer = {path: job for job, fields in jobs.items() for path in fields.get("output", "").split(", ") if path}
    readers: dict[tuple, set[tuple]] = {job: set() for job in jobs}
    for job, fields in jobs.items():
        for path in filter(None, fields.get("input", "").split(", ")):
            # an input inside a folder output (a directory() of another job) is that job's
            for candidate in [path, *(str(parent) for parent in Path(path).parents)]:
                if candidate in writer:
                    readers[writer[candidate]].add(job)
                    break
    closure: dict[tuple, set[tuple]] = {}

    def below(job):
        if job not in closure:
            closure[job] = set()
            for reader in readers[job]:
                closure[job] |= {reader} | below(reader)
        return closure[job]

    for job in jobs:
        below(job)
    return closure


def direct(jobs: dict[tuple[str, str], str]) -> set[tuple[str, str]]:
    """The jobs planned for a reason of their own (not only because a job upstream reruns)."""
    return {job for job, reason in jobs.items()
            if any(part.strip() and not part.strip().startswith(UPSTREAM) for part in reason.split(";"))}
