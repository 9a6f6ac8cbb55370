"""The package's layering, checked on the source itself: every import of a citi module, at the
top of a file or inside a function, points to the same layer or a lower one, and no set of
modules imports itself round (an import cycle). No exceptions are listed."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "citi"

# Bottom to top. The name is the part after "citi." (a module or a subpackage); "" is the
# package's own __init__, whose public names are imported lazily (PEP 562), so it imports nothing.
LAYERS = [
    {"", "errors", "io", "console", "precision", "output_lock"},
    {"config", "data", "models", "loss", "selection"},
    {"components", "molora", "adapters"},
    {"importance", "train", "evaluation", "plan"},
    {"analysis", "reproduce", "export", "export_serving", "lm_eval", "serve"},
    {"cli"},
]


def modules_under(root: Path) -> dict[str, Path]:
    """``citi.x.y`` -> its file, for every module of the package at ``root``."""
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports_of(module: str, modules: dict[str, Path]) -> set[str]:
    """The citi modules ``module`` imports, with the ``__init__`` of each package it imports
    from (Python runs that first) unless ``module`` itself is inside that package."""
    path = modules[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from this package, up level - 1 packages
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names]
            names = subs if all(s in modules for s in subs) else [base, *subs]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                target = ".".join(parts[:i])
                inside = module == target or module.startswith(target + ".")
                if target in modules and target != module and (i == len(parts) or not inside):
                    found.add(target)
    return found


def layer_of(module: str) -> int | None:
    key = module.split(".")[1] if "." in module else ""
    return next((i for i, names in enumerate(LAYERS) if key in names), None)


def upward_imports(modules: dict[str, Path]) -> list[str]:
    return sorted(
        f"{m} -> {t}" for m in modules for t in imports_of(m, modules) if layer_of(t) > layer_of(m)
    )


def import_cycles(modules: dict[str, Path]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    graph = {m: imports_of(m, modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_every_module_has_a_layer():
    assert sorted(m for m in modules_under(SRC) if layer_of(m) is None) == []


def test_imports_point_down_the_layers():
    assert upward_imports(modules_under(SRC)) == []


def test_no_import_cycles():
    assert import_cycles(modules_under(SRC)) == []


def test_the_checks_find_a_planted_cycle_and_upward_import(tmp_path):
    files = {
        "__init__.py": "",
        "errors.py": "from citi.cli.main import main\n",
        "evaluation/__init__.py": "",
        "evaluation/config.py": "from citi.evaluation import runner\n",
        "evaluation/runner.py": "def f():\n    from .config import X\n",
        "cli/__init__.py": "",
        "cli/main.py": "import citi.errors\n",
    }
    for name, text in files.items():
        (tmp_path / "citi" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "citi" / name).write_text(text)
    modules = modules_under(tmp_path / "citi")
    assert imports_of("citi.evaluation.runner", modules) == {"citi.evaluation.config"}
    assert imports_of("citi.errors", modules) == {"citi.cli", "citi.cli.main"}
    assert upward_imports(modules) == ["citi.errors -> citi.cli", "citi.errors -> citi.cli.main"]
    assert sorted(import_cycles(modules)) == [
        ["citi.cli.main", "citi.errors"],
        ["citi.evaluation.config", "citi.evaluation.runner"],
    ]
