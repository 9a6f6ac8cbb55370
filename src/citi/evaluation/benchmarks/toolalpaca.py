"""ToolAlpaca: the Thought / Action / Action Input / Observation agent loop and its scoring.

With a judge endpoint (``--judge-url``) the loop follows the paper: an LLM plays the API
server (ToolAlpaca's ``prompts/Simulator.txt``) and then judges each solution with
``prompts/Evaluation.txt``; Procedure, Response and Overall are the shares of "Yes" over all
items.

Without an endpoint there is no server to answer, so every call gets a fixed observation saying so,
and the solution is scored by a deterministic **procedure match** against the golden answers
(function names in order, and the golden answer's non-empty arguments). That is *not* the paper's
metric: it checks only that the right calls were made, not what the model did with the results.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from string import Template
from typing import Any

from citi.data.example import Example
from citi.errors import CitiError, DataError
from citi.evaluation.task import Task, TaskContext, TaskResult

MAX_TURNS = 10
STEP_STOPS = ("ASSISTANT Observation:", "USER:", "<|im_end|>")
NO_SIMULATOR = "(no API simulator configured: the request was recorded but not executed)"

AGENT_PROMPT = """A chat between a curious user and an artificial intelligence assistant. The \
assistant gives helpful, detailed, and polite answers to the user's questions with the help of \
some tools.
You have access to the following tools:
{tools}

Use the following format:
USER: the user's question
ASSISTANT Thought: what to do next
ASSISTANT Action: the tool to use, one of [{names}]
ASSISTANT Action Input: the input of the tool, as a JSON object
ASSISTANT Observation: the result of the tool
... (Thought, Action, Action Input and Observation may repeat)
ASSISTANT Thought: I now know the final answer
ASSISTANT Response: the final answer to the user

USER: {instruction}"""


def tools_of(example) -> dict[str, str]:
    return {k: v for k, v in example.meta["functions"].items() if k != "components"}


def agent_prompt(example) -> str:
    tools = tools_of(example)
    return AGENT_PROMPT.format(
        tools="\n".join(f"{name}: {desc}" for name, desc in tools.items()),
        names=", ".join(tools),
        instruction=example.messages[-1]["content"],
    )


_ACTION = re.compile(r"ASSISTANT Action:\s*(.*)")
_INPUT = re.compile(r"ASSISTANT Action Input:\s*(.*)", re.S)


def parse_step(text: str) -> dict:
    """One model turn (text after "ASSISTANT Thought:") as {thought, action, input} or
    {thought, response}; free text without an action counts as the final response."""
    if "ASSISTANT Response:" in text:
        thought, response = text.split("ASSISTANT Response:", 1)
        return {"thought": thought.strip(), "response": response.strip()}
    action = _ACTION.search(text)
    if action is None:
        return {"thought": "", "response": text.strip()}
    action_input = _INPUT.search(text, action.end())
    return {
        "thought": text[: action.start()].strip(),
        "action": action.group(1).strip(),
        "input": action_input.group(1).strip() if action_input else "",
    }


def _json_object(text: str) -> dict | None:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def observe(example, step: dict, simulator=None, simulator_prompt: str | None = None) -> str:
    """The observation for one call: an error for an unknown tool or a non-JSON input, otherwise
    the simulator's reply (or a fixed note without a simulator)."""
    tools = tools_of(example)
    if step["action"] not in tools:
        return f"Error: unknown tool {step['action']!r}; choose one of {', '.join(tools)}."
    params = _json_object(step["input"])
    if params is None:
        return "Error: the Action Input must be a JSON object."
    if simulator is None:
        return NO_SIMULATOR
    if simulator_prompt is None:
        raise CitiError("toolalpaca: a simulator needs its prompt (Simulator.txt)")
    path, method = (example.meta.get("projection", {}).get(step["action"]) or ["", "get"])[:2]
    request = f"{method.upper()} {path}\nParameters: {json.dumps(params, ensure_ascii=False)}"
    prompt = Template(simulator_prompt).safe_substitute(
        Name=example.meta["api"], Documentation=example.meta["documentation"], Request=request
    )
    return simulator.chat([{"role": "user", "content": prompt}])[:2000]


def run_agents(loaded, examples, batch_size, simulator=None, simulator_prompt=None) -> list[dict]:
    """Run every example's agent loop in lockstep (one batched generation per turn)."""
    from citi.data.render import render_prompt
    from citi.evaluation.generation import generate

    heads = [
        render_prompt(loaded.tokenizer, [{"role": "user", "content": agent_prompt(ex)}])
        + "ASSISTANT Thought:"
        for ex in examples
    ]
    runs: list[dict[str, Any]] = [
        {"steps": [], "response": None, "transcript": ""} for _ in examples
    ]
    for turn in range(MAX_TURNS):
        active = [i for i, r in enumerate(runs) if r["response"] is None]
        if not active:
            break
        outputs = generate(
            loaded.model,
            loaded.tokenizer,
            [heads[i] + runs[i]["transcript"] for i in active],
            192,
            STEP_STOPS,
            batch_size,
            progress=f"toolalpaca turn {turn + 1} ({len(active)} running)",
        )
        for i, text in zip(active, outputs, strict=True):
            step = parse_step(text)
            run = runs[i]
            if "response" in step:
                run["response"] = step["response"]
                run["transcript"] += f" {text.strip()}"
                continue
            step["observation"] = observe(examples[i], step, simulator, simulator_prompt)
            run["steps"].append(step)
            run["transcript"] += (
                f" {text.strip()}\nASSISTANT Observation: {step['observation']}\nASSISTANT Thought:"
            )
    return runs


# -- scoring -------------------------------------------------------------------------------------
def _norm(value):
    if isinstance(value, str):
        return value.strip().casefold()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def _args_match(predicted: str, golden: str) -> bool:
    want, got = _json_object(golden), _json_object(predicted)
    if want is None or got is None:
        return (predicted or "").strip() == (golden or "").strip()
    for key, value in want.items():
        if value in ("", None, [], {}):
            continue  # the golden answer leaves it open
        if key not in got or _norm(got[key]) != _norm(value):
            return False
    return True


def procedure_match(steps: list[dict], golden: list[dict], with_args: bool = True) -> bool:
    """All golden calls appear in order (retries between them allowed) and no function outside
    the golden answer is called."""
    allowed = {g["Action"] for g in golden}
    if any(s["action"] not in allowed for s in steps):
        return False
    pos = 0
    for g in golden:
        while pos < len(steps) and not (
            steps[pos]["action"] == g["Action"]
            and (not with_args or _args_match(steps[pos]["input"], g.get("Action_Input", "")))
        ):
            pos += 1
        if pos == len(steps):
            return False
        pos += 1
    return True


def load_template(data_dir, name: str) -> str:
    from citi.data.datadir import resolve_data_dir

    path = Path(resolve_data_dir(data_dir)) / "toolalpaca" / "prompts" / name
    if not path.is_file():
        raise DataError(
            f"{path}: file not found (ToolAlpaca's prompt template, needed by the judge)"
        )
    return path.read_text(encoding="utf-8")


_VERDICT = r"{}:\W*(yes|no|uncertain)"


def parse_judgement(text: str) -> tuple[str, str]:
    """(process, response) verdicts from the judge's reply; "Uncertain" when a line is missing."""
    out = []
    for label in ("Process Correctness", "Final Response Correctness"):
        found = re.findall(_VERDICT.format(label), text, flags=re.I)
        out.append(found[-1].capitalize() if found else "Uncertain")
    return out[0], out[1]


def judge_prompt(example, run: dict, template: str) -> str:
    standard = "\n".join(
        f"{i}. Function: {g['Action']}\nParameters: {g.get('Action_Input', '')}"
        for i, g in enumerate(example.meta["golden"], start=1)
    )
    solution = "\n".join(
        f"{i}. Function: {s['action']}\nParameters: {s['input']}\nReturns: {s['observation']}"
        for i, s in enumerate(run["steps"], start=1)
    )
    solution += f"\nResponse: {run['response'] or ''}"
    return Template(template).safe_substitute(
        documentation=example.meta["nl_documentation"],
        instruction=example.messages[-1]["content"],
        standard=standard,
        solution=solution,
    )


def evaluate_toolalpaca(task: Task, examples: list[Example], ctx: TaskContext) -> TaskResult:
    """Judged P/R/O with a judge, else the procedure match. The agent runs are cached
    (``ctx.generated``), so a judge failure does not cost the generation."""
    judge = ctx.judge
    simulator_prompt = load_template(ctx.data_dir, "Simulator.txt") if judge else None
    template = load_template(ctx.data_dir, "Evaluation.txt") if judge else None
    runs = ctx.generated(
        lambda: run_agents(ctx.loaded, examples, ctx.batch_size, judge, simulator_prompt)
    )
    from tqdm.auto import tqdm

    records = []
    pairs = zip(examples, runs, strict=True)
    for ex, run in tqdm(list(pairs), desc="toolalpaca judge", disable=judge is None, leave=False):
        golden = ex.meta["golden"]
        scores = {
            "procedure_match": float(procedure_match(run["steps"], golden)),
            "function_match": float(procedure_match(run["steps"], golden, with_args=False)),
            "steps": len(run["steps"]),
            "responded": float(run["response"] is not None),
        }
        if judge is not None and template is not None:  # (both or neither)
            # Items without any step are errors in ToolAlpaca's evaluation: never "Yes".
            process, response = ("No", "No")
            if run["steps"]:
                process, response = parse_judgement(
                    judge.chat([{"role": "user", "content": judge_prompt(ex, run, template)}])
                )
            scores |= {
                "procedure": float(process == "Yes"),
                "response": float(response == "Yes"),
                "overall": float(process == response == "Yes"),
            }
        records.append(
            {
                "api": ex.meta["api"],
                "index": ex.meta["index"],
                "instruction": ex.messages[-1]["content"],
                "golden": golden,
                "steps": run["steps"],
                "response": run["response"],
                "scores": scores,
            }
        )
    keys = records[0]["scores"] if records else {}
    metrics = {k: sum(r["scores"][k] for r in records) / len(records) for k in keys}
    if judge is None:
        metrics["note"] = (
            "no judge endpoint: deterministic procedure match against the golden answers, "
            "not the paper's GPT-4-judged Procedure/Response/Overall"
        )
    return TaskResult(metrics, records, "overall" if judge is not None else "procedure_match")


TASKS = [
    Task(
        name=f"toolalpaca-{split}",
        dataset=f"toolalpaca-{split}",
        description=f"ToolAlpaca ({split}) agent loop: judged Procedure/Response/Overall with "
        "--judge-url, else a deterministic procedure match (not the paper's metric)",
        run=evaluate_toolalpaca,
        uses_judge=True,
        primary="overall",
    )
    for split in ("sim", "real")
]
