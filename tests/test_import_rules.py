"""Import rules that keep the pipeline's stages in order.

Data flows one way: backend → task → scores → calibration → decision → report / server / deploy,
with the command line on top. A lower stage never imports a higher one, nothing imports the CLI,
no two modules import each other (not even inside a function), and no module reaches into
another's private names. Imports under ``if TYPE_CHECKING:`` are annotations only and do not count.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import confidently

PACKAGE = Path(confidently.__file__).parent


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the confidently module imported (or the outside package, e.g. "torch")
    name: str | None  # the name taken with ``from target import name``
    line: int


def module_files() -> dict[str, Path]:
    files = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


MODULES = module_files()


def _owner(name: str) -> str:
    """The module that defines ``name`` (a dotted path that may end in an attribute)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _annotation_only(tree: ast.Module) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return skipped


def imports_of(module: str) -> list[Import]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    skipped = _annotation_only(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _owner(alias.name) if alias.name.startswith("confidently") else alias.name.split(".")[0]
                found.append(Import(module, target, None, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if not source.startswith("confidently"):
                found.append(Import(module, source.split(".")[0], None, node.lineno))
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                target = submodule if submodule in MODULES else _owner(source)
                found.append(Import(module, target, alias.name, node.lineno))
    return [item for item in found if item.target != module]


ALL_IMPORTS = [item for module in sorted(MODULES) for item in imports_of(module)]


def _within(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _where(items: list[Import]) -> str:
    return "\n".join(f"{MODULES[i.module].relative_to(PACKAGE.parent)}:{i.line}: {i.module} imports {i.target}"
                     + (f" ({i.name})" if i.name else "") for i in items)


def test_the_analysis_sees_imports():
    targets = {(i.module, i.target) for i in ALL_IMPORTS}
    assert ("confidently.decision.decisions", "confidently.decision.thresholds") in targets
    assert ("confidently.backends.transformers_backend", "torch") in targets


def test_no_import_cycles():
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for item in ALL_IMPORTS:
        if item.target in MODULES:
            graph[item.module].add(item.target)
    # Tarjan's strongly connected components, iteratively
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    assert not cycles, "modules that import each other (directly or in a loop): " + "; ".join(
        " ↔ ".join(cycle) for cycle in cycles)


#: (the modules of a stage, what they must never import, why)
LOWER_STAGES = [
    (("confidently.types", "confidently.errors", "confidently.files", "confidently.defaults", "confidently.tasks.task"),
     ("confidently.backends", "confidently.calibration", "confidently.decision.decisions", "confidently.report",
      "confidently.server", "confidently.deploy", "confidently.finetune", "confidently.cli",
      "torch", "transformers", "peft", "fastapi", "llama_cpp"),
     "core types and tasks are plain data: no stage above them, no engine"),
    (("confidently.backends",),
     ("confidently.calibration", "confidently.metrics", "confidently.decision.thresholds", "confidently.decision.conformal",
      "confidently.decision.decisions", "confidently.report", "confidently.server", "confidently.deploy",
      "confidently.finetune", "confidently.cli"),
     "backends only produce next-token distributions (they read an adapter's bundle only to check its hashes)"),
    (("confidently.calibration", "confidently.metrics", "confidently.decision.thresholds", "confidently.decision.conformal"),
     ("confidently.backends", "confidently.scoring.classifier", "confidently.decision.decisions", "confidently.report",
      "confidently.server", "confidently.deploy", "confidently.finetune", "confidently.cli",
      "torch", "transformers", "peft"),
     "calibration and its statistics work on probabilities alone, whatever produced them"),
    (("confidently.decision.decisions", "confidently.decision.calibrated", "confidently.bundle.bundle"),
     ("confidently.report", "confidently.server", "confidently.deploy", "confidently.cli"),
     "the decision path is below every way of showing or serving it"),
    (("confidently.report",),
     ("confidently.server", "confidently.deploy", "confidently.cli"),
     "reports render results; they serve and deploy nothing"),
]


@pytest.mark.parametrize("stage, forbidden, why", LOWER_STAGES, ids=lambda v: v[0] if isinstance(v, tuple) else None)
def test_lower_stages_never_import_higher_ones(stage, forbidden, why):
    broken = [i for i in ALL_IMPORTS if _within(i.module, *stage) and _within(i.target, *forbidden)]
    assert not broken, f"{why}:\n{_where(broken)}"


def test_nothing_imports_the_cli():
    broken = [i for i in ALL_IMPORTS if _within(i.target, "confidently.cli")
              and not _within(i.module, "confidently.cli", "confidently.__main__")]
    assert not broken, f"the command line sits on top; only `python -m confidently` may import it:\n{_where(broken)}"


def test_no_private_names_across_modules():
    broken = [i for i in ALL_IMPORTS
              if i.name and i.name.startswith("_") and not i.name.startswith("__") and i.target in MODULES]
    assert not broken, f"another module's private name is used; make it public or move it:\n{_where(broken)}"
