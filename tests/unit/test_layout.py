"""The house's own rules, read from the code: stages depend one way, nothing imports in a
circle, each outside system sits behind one module, no module is past 400 lines, and the
module names of the flat layout (named by results and models pickled before) still import."""

import ast
import importlib
from pathlib import Path

import pytest

import tasks

ROOT = Path(__file__).resolve().parents[2]
STAGES = ["core", "data", "quality", "models", "evaluation", "platform", "registry"]
# Each outside system and the one module of tasks/ that may import it.
BEHIND = {
    "boto3": "tasks.data.storage",
    "botocore": "tasks.data.storage",
    "great_expectations": "tasks.quality.validation",
    "prefect": "tasks.platform.events",
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted([*ROOT.glob("tasks/**/*.py"), *ROOT.glob("flows/**/*.py")]):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """Every module ``name`` imports (at the top or inside a function), as absolute names."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    named = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            named |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            named.add(base)
            named |= {f"{base}.{alias.name}" for alias in node.names}
    return named


def _project_imports(name: str) -> set[str]:
    return {other for other in _imports(name) if other in MODULES and other != name}


def _stage(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if parts[0] == "tasks" and len(parts) > 2 else None


def test_every_tasks_module_lies_in_a_stage_package_with_a_docstring():
    for name, path in MODULES.items():
        if name.startswith("tasks.") and path.name != "__init__.py":
            assert _stage(name) in STAGES, f"{name} is in no stage package"
    for stage in STAGES:
        doc = ast.get_docstring(ast.parse((ROOT / "tasks" / stage / "__init__.py").read_text()))
        assert doc and "May import:" in doc, (
            f"tasks/{stage}/__init__.py says not what it may import"
        )


def test_stages_depend_one_way_and_tasks_never_imports_flows():
    wrong = []
    for name in MODULES:
        if not name.startswith("tasks"):
            continue
        for other in _project_imports(name):
            if other.startswith("flows"):
                wrong.append(f"{name} imports {other}")
            elif (
                (mine := _stage(name))
                and (theirs := _stage(other))
                and STAGES.index(theirs) > STAGES.index(mine)
            ):
                wrong.append(f"{name} ({mine}) imports {other} ({theirs}), a later stage")
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_itself_in_a_circle():
    graph = {name: _project_imports(name) for name in MODULES}
    # A package's __init__ runs before its modules: an import of the package is no edge back.
    graph = {n: {o for o in edges if not n.startswith(o + ".")} for n, edges in graph.items()}
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                cycle = [*path[path.index(other) :], other]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if other not in state:
                visit(other, [*path, other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_each_outside_system_sits_behind_one_module():
    wrong = []
    for name in MODULES:
        if not name.startswith("tasks"):
            continue
        for imported in _imports(name):
            top = imported.split(".")[0]
            if top in BEHIND and BEHIND[top] != name:
                wrong.append(f"{name} imports {imported}: only {BEHIND[top]} may")
    assert not wrong, "\n".join(wrong)


def test_no_module_is_past_400_lines():
    long = {
        name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 400
    }
    assert not long, f"past 400 lines (two concerns): {long}"


@pytest.mark.parametrize(("old", "new"), sorted(tasks.MOVED.items()))
def test_the_flat_layouts_module_names_still_import(old, new):
    assert importlib.import_module(old) is importlib.import_module(new)
