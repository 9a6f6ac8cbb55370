"""BFCL (Berkeley Function-Calling Leaderboard) Python AST categories as examples.

The files are BFCL's own (``BFCL_v4_<category>.json`` questions and ``possible_answer/`` beside
them, both JSON Lines), read from ``DATA_DIR/bfcl/`` or, when that is missing, from the package
data of an installed ``bfcl-eval`` (``pip install --no-deps bfcl-eval``; only its data is used,
so it is located without being imported).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from citi.data.example import TOOL, Example
from citi.data.records import ListOf, read_records, require
from citi.errors import DataError

# category -> BFCL's file stem

SYSTEM_PROMPT = (
    "You are an expert in composing functions. You are given a question and a set of possible "
    "functions. Based on the question, make one or more function calls to achieve the purpose. "
    "If none of the functions can be used, say so and make no call. If the question lacks "
    "parameters the function requires, say so as well.\n\n"
    "If you call functions, reply with the calls only, in the format "
    "[func_name1(param_name1=value1, param_name2=value2...), func_name2(params)] and no other "
    "text.\n\nHere is a list of functions in JSON format that you can invoke.\n{functions}\n"
)

FILES = {
    "simple": "BFCL_v4_simple_python",
    "multiple": "BFCL_v4_multiple",
    "parallel": "BFCL_v4_parallel",
    "parallel_multiple": "BFCL_v4_parallel_multiple",
    "irrelevance": "BFCL_v4_irrelevance",
}


def package_data_dir() -> Path | None:
    """``bfcl_eval/data`` of an installed bfcl-eval, found without importing the package."""
    try:
        spec = importlib.util.find_spec("bfcl_eval")
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec else []:
        if (Path(root) / "data").is_dir():
            return Path(root) / "data"
    return None


def load_bfcl(path: Path, category: str) -> list[Example]:
    answers = {}
    if category != "irrelevance":
        answer_path = path.parent / "possible_answer" / path.name
        for i, rec in enumerate(read_records(answer_path, lines=True)):
            require(answer_path, i, rec, {"id": str, "ground_truth": list})
            answers[rec["id"]] = rec["ground_truth"]
    out = []
    for i, rec in enumerate(read_records(path, lines=True)):
        require(path, i, rec, {"id": str, "question": ListOf(list, True), "function": list})
        turns = rec["question"]
        ok = turns[0] and all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
            for m in turns[0]
        )
        if not ok:
            raise DataError(
                f"{path}: record {i + 1} ({rec['id']}): 'question' is not [[{{role, content}}]]"
            )
        if category != "irrelevance" and rec["id"] not in answers:
            raise DataError(f"{path}: record {i + 1}: no possible answer for id {rec['id']!r}")
        functions = json.dumps(rec["function"], indent=1)
        messages = [{"role": "system", "content": SYSTEM_PROMPT.format(functions=functions)}]
        messages += [{"role": m["role"], "content": m["content"]} for m in turns[0]]
        out.append(
            Example(
                messages=tuple(messages),
                target=None,
                task_type=TOOL,
                ability="tool",
                source=f"bfcl-{category}",
                meta={
                    "id": rec["id"],
                    "category": category,
                    "functions": rec["function"],
                    "answers": answers.get(rec["id"], []),
                },
            )
        )
    return out
