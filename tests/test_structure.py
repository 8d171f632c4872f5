"""The package's shape: no import circle (function-local imports included), inference never
imports training, the runtime package never imports the developer tooling, modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

SRC = REPO / "src"


def module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = SRC) -> dict[str, set[str]]:
    """module -> the project modules it imports, at any depth of its code (a function-local import
    is an arrow too: it only postpones the circle)."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                # `from pkg import sub` imports the submodule when there is one
                candidates = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in candidates:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` (its modules in order), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_planted_circle(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from pkg import a  # a local import closes the circle\n")
    graph = import_graph(tmp_path)
    assert find_cycle(graph) in (["pkg.a", "pkg.b", "pkg.a"], ["pkg.b", "pkg.a", "pkg.b"])
    (pkg / "b.py").write_text("def f():\n    pass\n")
    assert find_cycle(import_graph(tmp_path)) is None


def test_no_import_circle():
    assert find_cycle(import_graph()) is None


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("stage", ["wsss.stages.infer_cams", "wsss.stages.infer_saliency",
                                   "wsss.stages.infer_segmentation", "wsss.stages.pseudo_masks"])
def test_inference_does_not_import_training(stage):
    training = {"wsss.stages.train_classifier", "wsss.stages.train_saliency", "wsss.stages.train_segmentation"}
    assert not reachable(import_graph(), stage) & training


def test_runtime_package_never_imports_developer_tooling():
    graph = import_graph()
    assert not [m for m, targets in graph.items() if m.startswith("wsss.") or m == "wsss"
                if any(t.startswith("wsss_dev") for t in targets)]


def test_the_workflow_parses_without_torch():
    """The Snakefile imports the registries and the config modules while parsing: none reaches torch."""
    graph = import_graph()
    parse_time = ["wsss.methods", "wsss.config.plan", "wsss.config.settings", "wsss.config.load",
                  "wsss.data.sources", "wsss.data.layout", "wsss.stages.ablation"]
    for module in parse_time:
        for reached in reachable(graph, module) | {module}:
            text = (SRC / (reached.replace(".", "/") + ".py")).read_text() if (
                SRC / (reached.replace(".", "/") + ".py")).exists() else (
                SRC / reached.replace(".", "/") / "__init__.py").read_text()
            top_level = [n for n in ast.parse(text).body if isinstance(n, (ast.Import, ast.ImportFrom))]
            names = {a.name for n in top_level if isinstance(n, ast.Import) for a in n.names}
            names |= {n.module for n in top_level if isinstance(n, ast.ImportFrom) and n.module}
            assert not {n for n in names if n.split(".")[0] == "torch"}, (module, reached)


def test_modules_stay_small():
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert not {p: n for p, n in sizes.items() if n > 420}, "split these modules by what they hold"
    common = len((REPO / "workflow" / "rules" / "common.smk").read_text().splitlines())
    assert common <= 120


# ---------------------------------------------------------------------------- floors of packages
def package_of(module: str) -> str:
    """The package a module belongs to: `wsss.<sub>` for the runtime package's subpackages, `wsss`
    for its top-level modules (the command line), `wsss_dev` for the developer tooling."""
    parts = module.split(".")
    if parts[0] != "wsss":
        return parts[0]
    return "wsss" if len(parts) == 1 or (SRC / "wsss" / f"{parts[1]}.py").exists() else f"wsss.{parts[1]}"


def documented_floors(doc: Path = REPO / "docs" / "architecture.md") -> dict[str, int]:
    """{package: floor} from the floor table of docs/architecture.md (rows `| N | `package` | ... |`)."""
    floors = {}
    for line in doc.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].isdigit() and cells[1].startswith("`"):
            floors[cells[1].strip("`")] = int(cells[0])
    return floors


def arrows_not_down(graph: dict[str, set[str]], floors: dict[str, int], package=package_of) -> list[str]:
    """Every import between two packages whose target is not on a lower floor (up, or sideways)."""
    bad = []
    for module, targets in graph.items():
        for target in targets:
            a, b = package(module), package(target)
            if a != b and floors[b] >= floors[a]:
                bad.append(f"{module} ({a}, floor {floors[a]}) imports {target} ({b}, floor {floors[b]})")
    return sorted(bad)


def test_every_package_has_a_floor_in_the_docs():
    floors = documented_floors()
    packages = {package_of(m) for m in import_graph()}
    assert packages == set(floors), "docs/architecture.md's floor table and src/ name different packages"


def test_imports_only_go_down_the_floors():
    assert arrows_not_down(import_graph(), documented_floors()) == []


def test_a_planted_upward_import_is_caught(tmp_path):
    """The same check on a copy of the package with one function-local import that climbs."""
    import shutil

    shutil.copytree(SRC / "wsss", tmp_path / "wsss")
    io = tmp_path / "wsss" / "core" / "io.py"
    io.write_text(io.read_text() + "\n\ndef _planted():\n    from wsss.stages import tables  # climbs 4 floors\n")
    bad = arrows_not_down(import_graph(tmp_path), documented_floors())
    assert bad == ["wsss.core.io (wsss.core, floor 0) imports wsss.stages.tables (wsss.stages, floor 4)"]
