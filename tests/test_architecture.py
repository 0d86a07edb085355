"""The shape of the house: imports flow one way, backends come from registries.

Imports are read from the source (every `import`, at module level or inside
a function, and every `"module:Class"` registry entry), so an import hidden
inside a function still counts: a lazy import hides a circle from Python,
not from this test.
"""

import ast
import re
from pathlib import Path
from typing import Literal, get_args

import pytest
from conftest import ROOT

from edge.config import DetectorName, DisplayName
from edge.detectors import DETECTORS, Detector, DetectorError
from edge.registry import Registry
from edge.sinks import DISPLAYS, SINKS, Sink, SinkError

PACKAGES = ("edge", "benchmarks", "host_training")
REGISTRY_ENTRY = re.compile(r"^((?:edge|benchmarks|host_training)(?:\.\w+)+):\w+$")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if ".venv" not in path.parts
    }


def imports_of(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports, wherever in the file the import is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        # `from a.b import c` imports a.b.c when c is a module, else a.b.
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            for alias in node.names:
                add(f"{base}.{alias.name}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and (match := REGISTRY_ENTRY.match(node.value))
        ):
            add(match.group(1))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, name, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the list of modules around it, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "active"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "active":
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_reader_sees_lazy_imports_and_registry_entries():
    graph = import_graph()
    assert "edge.engine" in graph["edge.cli"]  # imported inside cmd_run
    assert "edge.sinks.web" in graph["edge.sinks"]  # a registry entry
    assert "edge.detectors.mediapipe" in graph["edge.detectors"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_anywhere():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_nothing_below_the_cli_imports_it():
    graph = import_graph()
    # The two entry points are the CLI's callers; nothing else may be.
    callers = {name for name, targets in graph.items() if "edge.cli" in targets}
    assert callers <= {"edge.__main__", "edge.pipeline"}
    assert not [name for name, targets in graph.items() if "edge.pipeline" in targets]


def test_nothing_under_edge_imports_tensorflow_or_keras():
    for path in (ROOT / "edge").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for imported in names:
                assert imported.split(".")[0] not in {"tensorflow", "keras"}, path


def test_one_analysis_path():
    """Detect -> classify happens in edge/analysis.py only; others call FaceAnalyzer."""
    callers = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            if ".classify(" in text and path.name != "analysis.py":
                callers.append(str(path.relative_to(ROOT)))
    # host_training evaluates crops it made itself; no detector is involved there.
    assert [c for c in callers if not c.startswith("host_training/")] == []


@pytest.mark.parametrize(
    ("registry", "names", "base"),
    [(DETECTORS, DetectorName, Detector), (SINKS, None, Sink)],
)
def test_every_registered_backend_loads(registry, names, base):
    if names is not None:
        assert set(registry.names) == set(get_args(names))
    for name in registry:
        backend = registry.load(name)
        assert issubclass(backend, base) and backend.name == name


def test_every_display_the_config_accepts_is_a_sink():
    assert set(DISPLAYS) == set(get_args(DisplayName))
    assert set(DISPLAYS) - {"auto", "none"} <= set(SINKS.names)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(DetectorError, match="unknown detector 'dlib': use one of mediapipe, haar"):
        DETECTORS.load("dlib")
    with pytest.raises(
        SinkError, match="unknown sink 'x': use one of window, drm, console, record"
    ):
        SINKS.load("x")


def test_a_registry_that_drifts_from_the_config_does_not_start():
    with pytest.raises(RuntimeError, match="does not match"):
        Registry("detector", {"mediapipe": "m:M"}, DetectorError, names=Literal["mediapipe", "x"])
