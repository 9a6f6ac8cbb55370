"""The package's layering and size rules, checked on the source itself."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "citi"


def test_no_library_module_imports_the_cli():
    offenders = []
    for path in SRC.rglob("*.py"):
        if "cli" in path.relative_to(SRC).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("citi.cli")]
    assert offenders == []


def test_no_module_is_over_400_lines():
    sizes = {str(p.relative_to(SRC)): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    assert {k: v for k, v in sizes.items() if v > 400} == {}


def test_adapter_parameters_are_recognised_by_structure():
    from citi.adapters import adapter_kind

    assert adapter_kind("model.layers.0.mlp.up_proj.molora_router.weight") == "molora"
    assert adapter_kind("model.layers.0.self_attn.q_proj.lora_A.default.weight") == "lora"
    assert adapter_kind("model.layers.0.mlp.up_proj.weight") is None
    assert adapter_kind("model.flora_x.weight") is None  # a substring is not a prefix
