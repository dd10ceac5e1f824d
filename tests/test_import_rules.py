"""Import rules that keep the pipeline's stages in order.

Data flows one way: backend → task → scores → calibration → decision → bundle → production loop →
workflows / report → server / deploy, with the command line on top. Every module belongs to one stage
(:data:`STAGES`, by folder); a lower stage never imports a higher one except for the few imports listed,
with their reason, in :data:`UPWARD_EXCEPTIONS`; nothing imports the CLI; no two modules import each
other (not even inside a function); and no module reaches into another's private names. Imports
under ``if TYPE_CHECKING:`` are annotations only and do not count.
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
    assert ("confidently.decision.decisions", "confidently.decision.policy") in targets
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


#: The stages, in the order data flows, each a list of module prefixes (the longest matching prefix
#: places a module). A module may import its own stage and any lower one, never a higher one.
STAGES = [
    ("core types", ("confidently", "confidently.types", "confidently.errors", "confidently.files",
                    "confidently.defaults", "confidently.progress")),
    ("inputs: data sets, model registry, tasks", ("confidently.data", "confidently.models", "confidently.tasks")),
    ("engines: next-token backends and black-box scorers", ("confidently.backends", "confidently.scorers")),
    ("scoring: texts to Scores", ("confidently.scoring",)),
    ("calibration and its statistics", ("confidently.calibration", "confidently.metrics")),
    ("decision rules: thresholds, policy, prediction sets, decide", ("confidently.decision",)),
    ("the bundle artifact", ("confidently.bundle",)),
    ("a classifier applying a bundle", ("confidently.decision.calibrated",)),
    ("production loop: canary, drift, feedback, recalibration", ("confidently.monitoring", "confidently.feedback")),
    ("orchestration and reports", ("confidently.workflows", "confidently.report", "confidently.finetune")),
    ("serving and deployment", ("confidently.server", "confidently.deploy", "confidently.client")),
    ("command line", ("confidently.cli", "confidently.__main__")),
]

#: The only imports of a higher stage, each inside a function: (module, imported module, why).
UPWARD_EXCEPTIONS = [
    ("confidently.backends.transformers_backend", "confidently.bundle.bundle",
     "an adapter's bundle is read only to check the hashes of its weights before loading them"),
    ("confidently.scoring.classifier", "confidently.decision.decisions",
     "Classifier.classify explains one text with the raw (uncalibrated) decision"),
    ("confidently.tasks.shots", "confidently.scoring.classifier",
     "shot_classifier builds the classifier that asks with the few-shot task"),
]


def stage_of(module: str) -> int:
    best, rank = "", None
    for index, (_, prefixes) in enumerate(STAGES):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, rank = prefix, index
    assert rank is not None, f"{module} belongs to no stage: put it in a stage folder or add it to STAGES"
    return rank


def test_every_module_has_a_stage():
    for module in MODULES:
        stage_of(module)


def test_lower_stages_never_import_higher_ones():
    allowed = {(module, target) for module, target, _ in UPWARD_EXCEPTIONS}
    broken = [i for i in ALL_IMPORTS if i.target in MODULES and stage_of(i.target) > stage_of(i.module)
              and (i.module, i.target) not in allowed]
    assert not broken, "a module imports a stage above its own:\n" + "\n".join(
        f"{MODULES[i.module].relative_to(PACKAGE.parent)}:{i.line}: {i.module} ({STAGES[stage_of(i.module)][0]}) "
        f"imports {i.target} ({STAGES[stage_of(i.target)][0]})" for i in broken)


def test_upward_exceptions_are_still_needed():
    found = {(i.module, i.target) for i in ALL_IMPORTS}
    stale = [(module, target) for module, target, _ in UPWARD_EXCEPTIONS if (module, target) not in found]
    assert not stale, f"these exceptions no longer happen; remove them from UPWARD_EXCEPTIONS: {stale}"


ENGINES = ("torch", "transformers", "peft", "fastapi", "llama_cpp")
DECISION_RULES = ("confidently.decision.binomial", "confidently.decision.thresholds", "confidently.decision.volume",
                  "confidently.decision.policy", "confidently.decision.conformal", "confidently.decision.decisions")

#: (the modules of a stage, what they must never import, why): what the stage order alone does not forbid.
FORBIDDEN = [
    (("confidently.types", "confidently.errors", "confidently.files", "confidently.defaults", "confidently.progress",
      "confidently.data", "confidently.models", "confidently.tasks"),
     ENGINES, "core types, data, the model registry and tasks are plain data: no engine"),
    (("confidently.calibration", "confidently.metrics", *DECISION_RULES),
     ("confidently.backends", "confidently.scorers", "confidently.scoring", *ENGINES),
     "calibration, its statistics and the decision rules work on probabilities alone, whatever produced them"),
    (("confidently.report",), ("confidently.backends", "confidently.scorers", *ENGINES),
     "reports render results; they never run a model"),
]


@pytest.mark.parametrize("stage, forbidden, why", FORBIDDEN, ids=lambda v: v[0] if isinstance(v, tuple) else None)
def test_stages_never_import_what_they_must_not(stage, forbidden, why):
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
