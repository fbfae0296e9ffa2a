"""The package's shape: no import cycles between modules or between sub-packages (lazy and
type-checking imports count, imports by string are refused), no module over 300 lines, at most a
dozen modules at the top level, every module in the README's map and every sub-package in the wheel."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "accel_slowfast"
README = Path(__file__).parents[1] / "README.md"
MAX_LINES = 300
MAP_COLUMN = 18  # the README map's module names start here, after the group's name


def _modules() -> dict[str, Path]:
    """``{dotted name: file}`` of every module of the package (a package is its ``__init__``)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its file (not only at the top)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package upwards
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            # ``from package import module`` imports the module (and runs the package's __init__, which
            # imports nothing of ours but lazily); ``from module import name`` imports the module
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # a name inside a module: the module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def test_no_module_imports_itself_through_others():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _cycles(graph) == []


def _package(name: str) -> str:
    """The top-level sub-package ``name`` belongs to (``accel_slowfast.engine``), or the module itself."""
    return ".".join(name.split(".")[:2])


def test_no_subpackage_imports_itself_through_others():
    """The sub-packages form layers: ``data`` may use ``recipe``, never the other way round."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if name == "accel_slowfast":  # the root's lazy exports (``accel_slowfast.train``) are for users
            continue
        graph.setdefault(_package(name), set()).update(
            _package(other) for other in _imports(name, path, modules) if _package(other) != _package(name))
    assert _cycles(graph) == []


def test_an_import_by_string_is_found():
    """``importlib.import_module("accel_slowfast.x")`` would hide an edge from the tests above."""
    offenders = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                 if "import_module(" in path.read_text()]
    assert offenders == []


def test_at_most_a_dozen_modules_sit_at_the_top_level():
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_over_300_lines():
    long = {str(path.relative_to(PACKAGE)): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_readme_map_names_every_module():
    the_map = README.read_text().split("Every module, one line each")[1].split("```")[1]
    named, folder = set(), ""
    for line in filter(str.strip, the_map.splitlines()):
        group, module = line[:MAP_COLUMN].strip(), line[MAP_COLUMN:].split()[0]
        if group:  # a group's first line: a sub-package ("data/") or top-level modules ("the run")
            folder = group if group.endswith("/") else ""
        named.add(folder + module)
    files = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")}
    assert files - named == set(), "add a line for each to the README's map"
    assert named - files == set(), "the README's map names modules that do not exist"


def test_setup_cfg_ships_every_subpackage():
    """An explicit ``packages =`` list misses a new sub-package silently: the wheel then fails to import."""
    import configparser

    config = configparser.ConfigParser()
    config.read(PACKAGE.parent / "setup.cfg")
    listed = set(config["options"]["packages"].replace(",", " ").split())
    packages = {".".join(path.parent.relative_to(PACKAGE.parent).parts) for path in PACKAGE.rglob("__init__.py")}
    assert packages - listed == set(), "add them to setup.cfg's packages"
