"""The import contract of docs/architecture.md: packages in layers, one door for the fronts, no cycles.

Every module of `src/workbench/` belongs to one unit: a package (`core/`, `store/`, ...) or one of
the few modules kept at the top. A module may import its own unit and the units its rule names. A
violation fails with the rule it breaks, so the fix is clear from the message alone.
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

# The packages, lowest first, and what each may import besides itself.
PACKAGES: dict[str, set[str]] = {
    "core": set(),  # vocabulary, errors, limits, records: imports nothing of ours
    "analysis": {"core"},  # pure computation on arrays and records: no files, threads or engines
    "engine": {"core"},  # the backbone: knows no store, no examples
    "images": {"core", "engine"},  # examples in: zips, folders, decoding (for the backbone's input)
    "store": {"core", "analysis"},  # all SQL; nothing of jobs, tracking or MLflow
    "scoring": {"core", "analysis", "engine", "images", "store"},  # scores -> answers, explanations, exports
    "jobs": {"core", "analysis", "engine", "images", "store"},  # background training
    "tracking": {"core", "analysis", "engine", "images", "store", "scoring"},  # hears events; never imports jobs
    "service": {"core", "analysis", "engine", "images", "store", "scoring", "jobs", "tracking"},  # the one door
    "server": {"core", "api", "service"},  # the fronts: through the door only
    "cli": {"core", "api", "service", "server"},
    "widgets": {"core", "api", "service"},
}
# The modules kept at the top of the package, and what each may import.
TOP: dict[str, set[str]] = {
    "__init__": {"core", "analysis", "images", "store", "tracking", "service"},  # api: re-exports the public names
    "__main__": {"cli"},
    "spark": {"core", "api", "service", "cli"},  # a front, at its documented name
    "plots": {"analysis"},  # `workbench.plots`, a documented name: re-exports analysis.plots
    "pyfunc": {"tracking"},  # the loader every logged model names: re-exports tracking.pyfunc
}
FRONTS = {"server", "cli", "widgets", "spark", "__main__"}
# presentation helpers a front may use beside the door: plots draw, review picks images to show
FRONT_EXTRAS = {"analysis.plots", "analysis.review", "plots"}
# libraries a unit must never import, whatever its rule says
FORBIDDEN_LIBRARIES: dict[str, set[str]] = {
    "store": {"mlflow"},
    "engine": {"mlflow", "fastapi", "starlette", "uvicorn"},
    "tracking.pyfunc": {"fastapi", "starlette", "uvicorn"},
}
# single modules held to a stricter rule than their package
MODULE_RULES: dict[str, set[str]] = {
    "tracking.pyfunc": {"core", "analysis", "engine", "images", "scoring"},  # scores with no store and no web stack
}


def module_id(path: Path) -> str:
    """`store/database.py` -> "store.database"; a package's `__init__.py` is the package; the top one "__init__"."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> list[str]:
    return sorted(module_id(path) for path in PACKAGE.rglob("*.py"))


def path_of(module: str) -> Path:
    if module in ("__init__", "__main__") or (PACKAGE / f"{module.replace('.', '/')}.py").exists():
        return PACKAGE / f"{module.replace('.', '/')}.py"
    return PACKAGE / module.replace(".", "/") / "__init__.py"


def unit_of(module: str) -> str:
    head = module.split(".")[0]
    if head in PACKAGES or head in TOP:
        return "api" if head == "__init__" else head
    raise AssertionError(f"workbench.{module} is in no package of the contract: add it to PACKAGES or TOP here")


def _package_parts(module: str) -> list[str]:
    is_package = path_of(module).name == "__init__.py"
    parts = [] if module == "__init__" else module.split(".")
    return parts if is_package else parts[:-1]


def _resolve(parts: list[str]) -> str | None:
    dotted = ".".join(parts)
    if not parts:
        return "__init__"
    if (PACKAGE / f"{dotted.replace('.', '/')}.py").exists() or (PACKAGE / dotted.replace(".", "/")).is_dir():
        return dotted
    return None


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(module: str, *, typing_too: bool = True) -> set[str]:
    """The workbench modules `module` imports (module-level and lazy, `if TYPE_CHECKING:` optional)."""
    tree = ast.parse(path_of(module).read_text())
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
            if node.level:
                base = _package_parts(module)[: len(_package_parts(module)) - (node.level - 1)]
            elif (node.module or "").split(".")[0] == "workbench":
                node_module = (node.module or "").removeprefix("workbench").lstrip(".")
                base = node_module.split(".") if node_module else []
                found.update(_from(base, node.names))
                continue
            else:
                continue
            base = base + (node.module.split(".") if node.module else [])
            found.update(_from(base, node.names))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("workbench."):
                    found.add(_resolve(alias.name.split(".")[1:]) or "__init__")
    found.discard(module)
    return found


def _from(base: list[str], names: list[ast.alias]) -> set[str]:
    """`from <base> import names`: each name a module of ours, else the module `base` itself."""
    found = set()
    for alias in names:
        target = _resolve([*base, alias.name])
        found.add(target if target is not None else (_resolve(base) or "__init__"))
    return found


def rule_of(module: str) -> set[str]:
    """The units `module` may import besides its own: its module rule, else its package's or top module's."""
    unit = unit_of(module)
    return MODULE_RULES.get(module) or PACKAGES.get(unit) or TOP.get("__init__" if unit == "api" else unit, set())


def allowed(module: str, target: str) -> bool:
    unit, target_unit = unit_of(module), unit_of(target)
    if unit == target_unit:
        return True
    return target_unit in rule_of(module) or (unit in FRONTS and target in FRONT_EXTRAS)


def test_every_package_and_module_is_on_the_architecture_page():
    page = ARCHITECTURE.read_text()
    folders = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    assert folders == set(PACKAGES), f"the folders {sorted(folders)} are not the contract's packages {sorted(PACKAGES)}"
    for module in modules():
        unit_of(module)
        if module.split(".")[-1] not in ("__init__", "__main__") and module not in PACKAGES:
            assert f"`{module}`" in page, f"docs/architecture.md does not describe the module `{module}`"
    for package in PACKAGES:
        assert f"`{package}/`" in page, f"docs/architecture.md does not draw the package `{package}/`"


@pytest.mark.parametrize("module", modules())
def test_imports_follow_the_layers(module):
    unit = unit_of(module)
    for target in sorted(imports_of(module)):
        target_unit = unit_of(target)
        assert allowed(module, target), (
            f"workbench.{module} ({unit}) imports workbench.{target} ({target_unit}): "
            f"{module if module in MODULE_RULES else unit} may import only its own package and "
            f"{sorted(rule_of(module))}"
            + (" (and plots/review); everything else goes through Workbench" if unit in FRONTS else "")
        )


@pytest.mark.parametrize("unit", sorted(FORBIDDEN_LIBRARIES))
def test_forbidden_libraries_stay_out(unit):
    for module in modules():
        if module == unit or module.startswith(unit + "."):
            used = third_party_imports(module) & FORBIDDEN_LIBRARIES[unit]
            assert not used, f"workbench.{module} imports {sorted(used)}, which {unit} must never import"


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
            if target != "__init__" and target not in PACKAGES:
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
    for node in ast.walk(ast.parse(path_of(module).read_text())):
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


MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 350


@pytest.mark.parametrize("module", modules())
def test_no_module_over_500_lines_and_no_class_over_350(module):
    text = path_of(module).read_text()
    assert text.count("\n") <= MAX_MODULE_LINES, (
        f"workbench.{module} is {text.count(chr(10))} lines (limit {MAX_MODULE_LINES}): split it by what its parts own"
    )
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            assert lines <= MAX_CLASS_LINES, (
                f"workbench.{module}.{node.name} is {lines} lines (limit {MAX_CLASS_LINES}): split it by its seams"
            )
