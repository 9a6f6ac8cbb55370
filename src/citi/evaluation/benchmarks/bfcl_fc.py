"""BFCL in function-calling mode: the functions go to the model as tools through its chat
template, and the calls are read back from the template's format (Hermes, JSON, pythonic:
:func:`citi.evaluation.toolcalls.parse_tool_calls`), then checked by BFCL's AST rules
(:func:`citi.evaluation.benchmarks.bfcl.check_decoded`), verdict for verdict as in prompting mode.

The functions are turned into OpenAI tools the way bfcl-eval does for function-calling models:
a ``.`` in a name becomes ``_`` (the tools API forbids dots; calls are mapped back), BFCL's types
become JSON Schema's (``dict`` → ``object``, ``float`` → ``number`` with "This is a float type
value." added to its description, ``tuple`` → ``array``, ``any`` and unknown types → ``string``,
a missing type → ``string``), into nested properties and items, and Python functions' descriptions
end with "Note that the provided function is in Python 3 syntax.". Only the model sees the
converted tools; the checker reads BFCL's own functions and answers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from citi.evaluation.benchmarks import bfcl
from citi.evaluation.task import Task, TaskContext, TaskResult, verdict_aggregate
from citi.evaluation.toolcalls.parse import parse_tool_calls
from citi.evaluation.toolcalls.task import STOPS, render_messages

_TO_JSON_SCHEMA = {
    "integer": "integer",
    "number": "number",
    "float": "number",
    "string": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "tuple": "array",
    "dict": "object",
    "object": "object",
    "any": "string",
}
PYTHON_NOTE = " Note that the provided function is in Python 3 syntax."


def _cast(prop: dict) -> dict:
    declared = prop.get("type")
    if declared == "float":
        prop["format"] = "float"
        prop["description"] = prop.get("description", "") + " This is a float type value."
    prop["type"] = _TO_JSON_SCHEMA.get(declared, "string") if declared else "string"
    if isinstance(prop.get("properties"), dict):
        prop["properties"] = {k: _cast(v) for k, v in prop["properties"].items()}
    elif isinstance(prop.get("items"), dict) and "type" in prop["items"]:
        prop["items"] = _cast(prop["items"])
    return prop


def tool_name(name: str) -> str:
    """A BFCL function name as the tools API allows it."""
    return name.replace(".", "_")


def to_tools(functions: list[dict]) -> list[dict]:
    """BFCL's Python function documents as OpenAI-style tools (see the module docstring)."""
    tools = []
    for fn in copy.deepcopy(functions):
        params = fn.get("parameters") or {}
        params["type"] = "object"
        params["properties"] = {k: _cast(v) for k, v in (params.get("properties") or {}).items()}
        tool = {
            "name": tool_name(fn["name"]),
            "description": fn.get("description", "") + PYTHON_NOTE,
            "parameters": params,
        }
        tools.append({"type": "function", "function": tool})
    return tools


def decode(output: str, functions: list[dict]) -> list[dict] | None:
    """``[{name: args}]`` from a function-calling answer (names mapped back to BFCL's), or None
    when it makes no call (what BFCL reports as a failed decode)."""
    parsed = parse_tool_calls(output)
    if not parsed.calls:
        return None
    originals = {tool_name(f["name"]): f["name"] for f in functions}
    return [{originals.get(c["name"], c["name"]): c["arguments"]} for c in parsed.calls]


def user_messages(example) -> list[dict]:
    """The question without prompting mode's system prompt (its function list and format)."""
    return [m for m in example.messages if m["role"] != "system"]


def make_bfcl_fc_run(max_new_tokens: int, aggregate: Callable[[list[dict]], dict]):
    """The run of a function-calling BFCL task: render with the tools, generate, decode, check;
    ``aggregate`` totals the per-sample verdicts as prompting mode does."""

    def run(_task: Task, examples: list, ctx: TaskContext) -> TaskResult:
        from citi.evaluation.generation import generate

        loaded, batch_size = ctx.loaded, ctx.batch_size
        tok = loaded.tokenizer
        prompts = [
            render_messages(tok, user_messages(ex), to_tools(ex.meta["functions"]))
            for ex in examples
        ]

        def make():
            return generate(
                loaded.model, tok, prompts, max_new_tokens, STOPS, batch_size, "eval bfcl-fc"
            )

        outputs = ctx.generated(make)
        records = []
        for ex, prompt, output in zip(examples, prompts, outputs, strict=True):
            meta = ex.meta
            verdict = bfcl.check_decoded(
                meta["category"],
                decode(output, meta["functions"]),
                meta["functions"],
                meta["answers"],
            )
            scores = {"correct": float(verdict == bfcl.CORRECT), "verdict": verdict}
            records.append(
                {"prompt": prompt, "prediction": output, "id": meta["id"], "scores": scores}
            )
        return TaskResult(aggregate([r["scores"] for r in records]), records)

    return run


def _tasks() -> list[Task]:
    tasks = []
    for category in bfcl.CATEGORIES:
        new_tokens = 256 if category.startswith("parallel") else 128
        tasks.append(
            Task(
                name=f"bfcl-fc-{category.replace('_', '-')}",
                dataset=f"bfcl-{category.replace('_', '-')}",
                description=f"BFCL {category} in function-calling mode: the functions as tools "
                "through the chat template, calls read from its format (Hermes, JSON, pythonic), "
                "BFCL's AST checker",
                max_new_tokens=new_tokens,
                stop=STOPS,
                run=make_bfcl_fc_run(new_tokens, verdict_aggregate("accuracy", bfcl.ERROR_TYPES)),
                primary="accuracy",
            )
        )
    return tasks


# Function-calling mode: the same samples and checker as bfcl-*, the functions passed as tools.
TASKS = _tasks()
