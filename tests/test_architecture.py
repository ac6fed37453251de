"""The import contract of docs/architecture.md: layers, one door for the fronts, no cycles.

Every module of `src/workbench/` belongs to one layer; a module may import only what its layer
allows. A violation fails with the rule it breaks, so the fix is clear from the message alone.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "workbench"
ARCHITECTURE = PACKAGE.parents[1] / "docs" / "architecture.md"

LAYERS: dict[str, set[str]] = {
    # import nothing of ours but other leaves
    "leaf": {"errors", "limits", "vocabulary", "spec", "timestamps", "events", "atomic", "sources", "names"},
    # pure computation on arrays and records: no files, no threads, no engines
    "analysis": {
        "training",
        "familiarity",
        "calibration",
        "general",
        "languages",
        "maps",
        "plots",
        "review",
        "interpretation",
    },
    # the engine's working parts: reading examples, the backbone, storage, background jobs, MLflow
    "pipeline": {
        "examples",
        "decode",
        "classify",
        "backbone",
        "explicit",
        "network",
        "onnx_engine",
        "onnx_graph",
        "quantize",
        "batching",
        "store",
        "jobs",
        "curation",
        "promotion",
        "leases",
        "owners",
        "tracking",
        "tracked_files",
        "run_record",
        "pyfunc",
        "export",
        "explain",
        "doctor",
        "wait_progress",
        "streaming",
        "unknown_images",
        "zip_directory",
    },
    # the one door
    "service": {"service"},
    # the public API: `Workbench` and the types and helpers it hands out, re-exported from their homes
    "api": {"__init__"},
    # the fronts: CLI, HTTP, notebooks
    "front": {
        "__main__",
        "cli",
        "server",
        "serve_workers",
        "connection_limits",
        "process_memory",
        "forms",
        "schemas",
        "image_urls",
        "keys",
        "widgets",
        "results_files",
        "spark",
    },
}
MAY_IMPORT: dict[str, set[str]] = {
    "leaf": {"leaf"},
    "analysis": {"leaf", "analysis"},
    "pipeline": {"leaf", "analysis", "pipeline"},
    "service": {"leaf", "analysis", "pipeline"},
    "api": {"leaf", "analysis", "pipeline", "service"},
    "front": {"leaf", "api", "service", "front"},
}
# the presentation helpers a front may use beside the door: plots draw, review picks images to show
FRONT_EXTRAS = {"plots", "review"}


def layer_of(module: str) -> str:
    for layer, modules in LAYERS.items():
        if module in modules:
            return layer
    raise AssertionError(f"module workbench.{module} is in no layer: add it to LAYERS here and to docs/architecture.md")


def modules() -> list[str]:
    return sorted(path.stem for path in PACKAGE.glob("*.py"))


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(module: str, *, typing_too: bool = True) -> set[str]:
    """The workbench modules `module` imports (module-level and lazy, `if TYPE_CHECKING:` optional)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    skipped: set[int] = set()
    if not typing_too:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and _is_type_checking(node):
                skipped.update(id(child) for child in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or (node.module or "").split(".")[0] == "workbench":
                base = node.module if node.level == 1 else (node.module or "").removeprefix("workbench").lstrip(".")
                if base:
                    found.add(base.split(".")[0])
                else:  # from . import name: a module of ours, or a public name of the package
                    found.update(a.name if (PACKAGE / f"{a.name}.py").exists() else "__init__" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("workbench."))
    found.discard(module)
    return found


def test_every_module_is_in_a_layer_and_in_the_architecture_page():
    page = ARCHITECTURE.read_text()
    for module in modules():
        layer_of(module)
        if module not in ("__init__", "__main__"):
            assert f"`{module}`" in page, f"docs/architecture.md does not describe module `{module}`"


@pytest.mark.parametrize("module", modules())
def test_imports_follow_the_layers(module):
    layer = layer_of(module)
    for target in sorted(imports_of(module)):
        target_layer = layer_of(target)
        allowed = target_layer in MAY_IMPORT[layer] or (layer == "front" and target in FRONT_EXTRAS)
        assert allowed, (
            f"workbench.{module} ({layer}) imports workbench.{target} ({target_layer}): "
            f"a {layer} module may import only {sorted(MAY_IMPORT[layer])}"
            + (" and plots/review; everything else goes through Workbench" if layer == "front" else "")
        )


def test_no_import_cycles():
    graph = {m: imports_of(m, typing_too=False) for m in modules()}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            if target != "__init__":
                visit(target, [*path, module])
        done.add(module)

    for module in graph:
        visit(module, [])


RUNTIME_EXTRAS = ("spark", "team", "browser")  # optional features of the package; the `test` extra is not one


def _distribution_name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def third_party_imports(module: str) -> set[str]:
    """The top-level names of the libraries `module` imports (standard library and our own left out)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
    return found - set(sys.stdlib_module_names) - {"workbench", "__future__"}


def test_every_imported_library_is_a_declared_dependency():
    project = tomllib.loads((PACKAGE.parents[1] / "pyproject.toml").read_text())["project"]
    declared = {_distribution_name(r) for r in project["dependencies"]}
    declared |= {_distribution_name(r) for extra in RUNTIME_EXTRAS for r in project["optional-dependencies"][extra]}
    distributions = packages_distributions()
    for module in modules():
        for name in sorted(third_party_imports(module)):
            provided_by = {_distribution_name(d) for d in distributions.get(name, [name])}
            assert provided_by & declared, (
                f"workbench.{module} imports {name} ({', '.join(sorted(provided_by))}), "
                "which pyproject.toml does not declare in dependencies"
            )


# The public surface, pinned: a name added to or dropped from `workbench.__all__` is an API change, made on purpose.
PUBLIC_API = {
    "ClassifierEvent",
    "ClassifierNotFound",
    "Curation",
    "ExampleNotFound",
    "ImageTooSmall",
    "ImageURL",
    "ImageUnreadable",
    "Interpretation",
    "InvalidClassName",
    "InvalidExamples",
    "InvalidRequest",
    "InvalidThreshold",
    "LimitExceeded",
    "Limits",
    "ModelNotInstalled",
    "NoImages",
    "OutOfFold",
    "StoreUnavailable",
    "TooFewExamples",
    "TrackingError",
    "TrainingExample",
    "Unauthorized",
    "UnsupportedLanguage",
    "UnsupportedMediaType",
    "VersionNotFound",
    "WaitTimeout",
    "Workbench",
    "WorkbenchError",
    "examples_frame",
    "folder_images",
    "folder_sets",
    "image_paths",
    "label_from_name",
    "named_images",
    "parse_labels",
    "set_name",
    "tracking_uri",
}


def test_the_public_api_is_pinned_and_every_name_is_documented():
    import workbench

    assert set(workbench.__all__) == PUBLIC_API and len(workbench.__all__) == len(PUBLIC_API)
    for name in workbench.__all__:
        value = getattr(workbench, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), f"workbench.{name} has no docstring"
