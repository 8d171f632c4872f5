"""Kill rate per module (and per function) of the last `make mutation` run, from mutmut's files.

    python tests/mutation/report.py [MODULE_PREFIX ...]

Reads mutants/**/*.py.meta (mutmut 3) in the repository root; prints one row per module and, with
--functions, one per function. Killed = a test failed; timeout = the tests ran past mutmut's limit
(an endless loop: detected, shown apart); survived = every test passed; no tests = no test ran the
mutated function; signal = the test process was killed by its CPU limit (mutmut's "segfault": a mutant
that loops), left out of the rate. Kill rate = (killed + timeout) / (killed + timeout + survived).
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from mutmut.stats import status_by_exit_code


def collect(root: Path) -> dict[str, Counter]:
    by_function: dict[str, Counter] = defaultdict(Counter)
    for meta in sorted(root.glob("mutants/src/**/*.py.meta")):
        for key, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            function = re.sub(r"__mutmut_\d+$", "", key)
            by_function[function][status_by_exit_code[code]] += 1
    return by_function


def rate(c: Counter) -> str:
    ran = c["killed"] + c["timeout"] + c["survived"]
    return f"{100 * (c['killed'] + c['timeout']) / ran:.1f} %" if ran else "-"


def main(argv: list[str]) -> int:
    functions = "--functions" in argv
    prefixes = [a for a in argv if not a.startswith("--")] or [""]
    by_function = {f: c for f, c in collect(Path.cwd()).items() if any(f.startswith(p) for p in prefixes)}
    by_module: dict[str, Counter] = defaultdict(Counter)
    for f, c in by_function.items():
        by_module[f.rsplit(".", 1)[0]].update(c)
    cols = ["killed", "timeout", "survived", "segfault", "no tests", "not checked"]
    header = [{"segfault": "signal"}.get(k, k) for k in cols]
    print("| module | " + " | ".join(header) + " | kill rate |\n|---|" + "---|" * (len(cols) + 1))
    for m, c in sorted(by_module.items()):
        print(f"| {m} | " + " | ".join(str(c[k]) for k in cols) + f" | {rate(c)} |")
    if functions:
        print()
        for f, c in sorted(by_function.items()):
            print(f"| {f} | " + " | ".join(str(c[k]) for k in cols) + f" | {rate(c)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
