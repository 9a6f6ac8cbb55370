"""Evaluation tasks as small registered records: data, prompt, generation limits, per-sample
scoring and aggregation. Add a task by registering one more :class:`Task`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from citi.data.example import Example
from citi.evaluation import apibank, bfcl, bfcl_fc, drift, metrics, multiple_choice
from citi.evaluation.toolcalls import task as toolcall_task


@dataclass(frozen=True)
class Task:
    name: str
    dataset: str | tuple[str, ...]  # a tuple: the datasets interleaved, the limit split evenly
    kind: str  # "generate" or "loglik" (mean NLL of the reference answers)
    description: str
    max_new_tokens: int = 128
    stop: tuple[str, ...] = ()
    prompt: Callable[[Example], list[dict]] = lambda ex: ex.prompt_messages
    score: Callable[[Example, str], dict] | None = None
    aggregate: Callable[[list[dict]], dict] | None = None
    primary: str = ""  # the headline metric
    # A task with its own loop (an agent, a multi-turn chat) instead of one generation per
    # example: run(loaded, examples, batch_size, judge, data_dir, generated) -> (metrics,
    # records), where generated(make) returns make()'s outputs, cached across reruns.
    run: Callable | None = None
    needs_judge: bool = False  # skipped, with a message, when no judge endpoint is given
    # A task on the user's own data (--eval-data) instead of a named dataset:
    # load(source, limit) -> the examples its run takes.
    load: Callable | None = None
    # Bump when the prompt or the scorer changes: it is part of the resume key, so finished
    # results of the old version are recomputed (version 1 keeps the keys results had before).
    version: int = 1


def mean_of(records: list[dict]) -> dict:
    keys = [k for k, v in records[0].items() if isinstance(v, int | float)] if records else []
    return {k: sum(r[k] for r in records) / len(records) for k in keys}


def _tool_match(ex: Example, level: str) -> tuple[str, Callable[[str, str], bool]]:
    """(method, match) deciding ToolSearcher calls: the retrieved tools compared where an
    embedder and the recorded API descriptions are available, else keyword overlap."""
    from citi.evaluation import toolsearch

    method, searcher = toolsearch.searcher_for(ex.meta.get("apis_file") or "")
    if searcher is None:
        return "keywords", toolsearch.keywords_match
    prep = toolsearch.split_keywords if level == "3" else (lambda k: k)
    return method, lambda pred, gold: searcher.best(prep(pred)) == searcher.best(prep(gold))


def _api_score(ex: Example, prediction: str) -> dict:
    level = ex.source.removeprefix("apibank-l")[:1]
    method, match = _tool_match(ex, level)
    verdict = apibank.score_api_sample(
        prediction, ex.reference, ex.messages[0]["content"], level, match
    )
    record = {"correct": float(verdict == apibank.CORRECT), "verdict": verdict}
    if "ToolSearcher(" in ex.reference:
        record["toolsearch"] = method
    return record


def verdict_aggregate(metric: str, error_types: tuple[str, ...]) -> Callable[[list[dict]], dict]:
    """Share of correct samples as ``metric``, plus the count of each error verdict."""

    def aggregate(records: list[dict]) -> dict:
        counts = Counter(r["verdict"] for r in records)
        return {
            metric: sum(r["correct"] for r in records) / len(records),
            "errors": {e: counts.get(e, 0) for e in error_types},
        }

    return aggregate


_verdicts = verdict_aggregate("correctness", apibank.ERROR_TYPES)


def _api_aggregate(records: list[dict]) -> dict:
    """Correctness and error counts, plus how ToolSearcher calls were decided."""
    out = _verdicts(records)
    methods = sorted({r["toolsearch"] for r in records if "toolsearch" in r})
    if methods:
        out["toolsearch"] = methods
    return out


def _response_score(ex: Example, prediction: str) -> dict:
    return {"rouge_l": apibank.rouge_l(prediction, ex.reference)}


def _bfcl_score(ex: Example, prediction: str) -> dict:
    verdict = bfcl.check_sample(
        ex.meta["category"], prediction, ex.meta["functions"], ex.meta["answers"]
    )
    return {"correct": float(verdict == bfcl.CORRECT), "verdict": verdict}


_bfcl_aggregate = verdict_aggregate("accuracy", bfcl.ERROR_TYPES)


def _gsm8k_prompt(ex: Example) -> list[dict]:
    q = ex.messages[0]["content"]
    return [
        {
            "role": "user",
            "content": f"{q}\nSolve the problem step by step, then give the "
            "final answer on the last line as '#### <number>'.",
        }
    ]


def _gsm8k_score(ex: Example, prediction: str) -> dict:
    return metrics.gsm8k_scores(prediction, ex.meta["final"])


def _trivia_prompt(ex: Example) -> list[dict]:
    return [
        {
            "role": "user",
            "content": "Answer the trivia question with only the answer, no "
            f"explanation.\nQuestion: {ex.messages[0]['content']}",
        }
    ]


def _trivia_score(ex: Example, prediction: str) -> dict:
    return {"exact_match": metrics.triviaqa_exact_match(prediction, ex.meta["aliases"])}


def _ifeval_score(ex: Example, prediction: str) -> dict:
    from citi.evaluation.ifeval import ifeval_scores

    return ifeval_scores(ex.messages[0]["content"], prediction, ex.meta)


def _ifeval_aggregate(records: list[dict]) -> dict:
    from citi.evaluation.ifeval import ifeval_aggregate

    return ifeval_aggregate(records)


def _humaneval_score(ex: Example, prediction: str) -> dict:
    from citi.evaluation.sandbox import humaneval_program, run_program

    program = humaneval_program(
        ex.meta["code_prompt"], prediction, ex.meta["test"], ex.meta["entry_point"]
    )
    result = run_program(program, timeout=10.0)
    return {"pass@1": float(result.passed), "status": result.status, "isolation": result.isolation}


def _humaneval_aggregate(records: list[dict]) -> dict:
    """pass@1 plus the sandbox isolation level that was in force (see citi.evaluation.sandbox)."""
    out = mean_of(records)
    out["isolation"] = sorted({r.get("isolation", "") for r in records})
    return out


API_STOPS = ("\n\n", "<|im_end|>")
TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Add a task; a second task of the same name is an error, never a silent overwrite."""
    if task.name in TASKS:
        raise ValueError(f"evaluation task {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


for level in ("1", "2", "3"):
    register(
        Task(
            f"apibank-l{level}",
            f"apibank-l{level}",
            "generate",
            f"API-Bank level-{level} API calls: correctness C and error taxonomy",
            max_new_tokens=128,
            stop=API_STOPS,
            score=_api_score,
            aggregate=_api_aggregate,
            primary="correctness",
            version=3,  # 3: look-ups and validations before the checkers, trailing-comma calls
        )
    )
    register(
        Task(
            f"apibank-l{level}-response",
            f"apibank-l{level}-response",
            "generate",
            f"API-Bank level-{level} responses: ROUGE-L F1",
            max_new_tokens=128,
            stop=API_STOPS,
            score=_response_score,
            primary="rouge_l",
        )
    )
for category in bfcl.CATEGORIES:
    name = f"bfcl-{category.replace('_', '-')}"
    new_tokens = 256 if category.startswith("parallel") else 128
    register(
        Task(
            name,
            name,
            "generate",
            f"BFCL {category} (Python): AST-checked accuracy and error types",
            max_new_tokens=new_tokens,
            stop=API_STOPS,
            score=_bfcl_score,
            aggregate=_bfcl_aggregate,
            primary="accuracy",
            version=3,  # 3: constant expressions folded as bfcl-eval decodes them, **{...}
        )
    )
    # Function-calling mode: the same samples and checker, the functions passed as tools.
    register(
        Task(
            f"bfcl-fc-{category.replace('_', '-')}",
            name,
            "generate",
            f"BFCL {category} in function-calling mode: the functions as tools through the chat "
            "template, calls read from its format (Hermes, JSON, pythonic), BFCL's AST checker",
            max_new_tokens=new_tokens,
            stop=toolcall_task.STOPS,
            run=bfcl_fc.make_bfcl_fc_run(new_tokens, _bfcl_aggregate),
            primary="accuracy",
        )
    )


def _toolalpaca_run(loaded, examples, batch_size, judge, data_dir, generated=None):
    from citi.evaluation.toolalpaca import evaluate_toolalpaca

    return evaluate_toolalpaca(loaded, examples, batch_size, judge, data_dir, generated)


def _mtbench_run(loaded, examples, batch_size, judge, data_dir, generated=None):
    from citi.evaluation.mtbench import evaluate_mtbench

    return evaluate_mtbench(loaded, examples, batch_size, judge, data_dir, generated)


for split in ("sim", "real"):
    register(
        Task(
            f"toolalpaca-{split}",
            f"toolalpaca-{split}",
            "agent",
            f"ToolAlpaca ({split}) agent loop: judged Procedure/Response/Overall with "
            "--judge-url, else a deterministic procedure match (not the paper's metric)",
            run=_toolalpaca_run,
            primary="overall",
        )
    )
register(
    Task(
        "mtbench",
        "mtbench",
        "chat",
        "MT-Bench two-turn answers rated 1-10 by the --judge-url model, as a percentage",
        run=_mtbench_run,
        needs_judge=True,
        primary="score",
    )
)
register(
    Task(
        "gsm8k",
        "gsm8k-test",
        "generate",
        "GSM8K test, final-number exact match",
        max_new_tokens=384,
        prompt=_gsm8k_prompt,
        score=_gsm8k_score,
        primary="exact_match_flexible",
        version=2,  # 2: lm-eval's gsm8k rules exactly (string match, its filters)
    )
)
register(
    Task(
        "triviaqa",
        "triviaqa-test",
        "generate",
        "TriviaQA held-out split, exact match against the aliases",
        max_new_tokens=32,
        stop=("\n",),
        prompt=_trivia_prompt,
        score=_trivia_score,
        primary="exact_match",
    )
)
register(multiple_choice.triviaqa_task(Task, _trivia_prompt))
register(
    Task(
        "ifeval",
        "ifeval",
        "generate",
        "IFEval prompt/instruction-level accuracy, strict and loose (lm-eval checkers)",
        max_new_tokens=512,
        score=_ifeval_score,
        aggregate=_ifeval_aggregate,
        primary="prompt_level_strict",
    )
)
register(
    Task(
        "humaneval",
        "humaneval",
        "generate",
        "HumanEval pass@1 (greedy), run in a limited subprocess",
        max_new_tokens=384,
        score=_humaneval_score,
        aggregate=_humaneval_aggregate,
        primary="pass@1",
    )
)
# Held-out splits only, so retention never scores text a model was trained on.
for ability, dataset in (
    ("math", "gsm8k-test"),
    ("knowledge", "triviaqa-test"),
    ("code", "humaneval-solutions"),
    ("tool", "apibank-l2"),
):
    register(
        Task(
            f"retention-{ability}",
            dataset,
            "loglik",
            f"mean per-token NLL of the {dataset} reference answers (lower is better)",
            primary="nll",
        )
    )
# Forgetting measures that do not reward answer style (see citi.evaluation.drift).
for ability, dataset, prompt in (
    ("math", "gsm8k-test", _gsm8k_prompt),
    ("knowledge", "triviaqa-test", _trivia_prompt),
    ("code", "humaneval", lambda ex: ex.prompt_messages),
    ("instruction", "ifeval", lambda ex: ex.prompt_messages),
):
    register(
        Task(
            f"drift-{ability}",
            dataset,
            "drift",
            f"mean per-token KL(base || tuned) over the base model's greedy answers to "
            f"{dataset} prompts (lower is better; 0 = unchanged)",
            max_new_tokens=drift.DRIFT_NEW_TOKENS,
            run=drift.make_drift_run(prompt),
            primary="kl",
        )
    )

_GENERAL_PROMPTS = {"gsm8k-test": _gsm8k_prompt, "triviaqa-test": _trivia_prompt}
register(
    Task(
        "leak-tool",
        ("gsm8k-test", "triviaqa-test", "humaneval", "ifeval"),
        "generate",
        "share of general prompts (GSM8K, TriviaQA, HumanEval, IFEval, interleaved) whose "
        "greedy answer contains a tool call: API-Bank, Hermes or JSON (lower is better)",
        max_new_tokens=96,
        prompt=lambda ex: _GENERAL_PROMPTS.get(ex.source, lambda e: e.prompt_messages)(ex),
        score=drift.leak_score,
        primary="leak",
        version=2,  # 2: Hermes <tool_call> blocks and JSON calls count as leaks too
    )
)


register(
    Task(
        "tool-calls",
        "eval-data",
        "generate",
        "your held-out tool conversations (--eval-data): each assistant turn generated after the "
        "gold history, calls parsed (Hermes, JSON, pythonic) and AST-checked against the tools' "
        "JSON Schemas; parse rate, exact match, name accuracy, argument F1, missed/false calls",
        max_new_tokens=toolcall_task.MAX_NEW_TOKENS,
        stop=toolcall_task.STOPS,
        run=toolcall_task.run_tool_calls,
        load=toolcall_task.load_turns,
        primary="ast_accuracy",
    )
)
