"""``citi eval``: run tasks on a model (with an optional trained adapter) and write results.

Each finished task is written to ``OUT/tasks/<task>.json`` (metrics and settings) and
``OUT/predictions/<task>.jsonl`` (prompt, prediction, reference, per-sample scores); a rerun
skips finished tasks with the same settings. ``results.json`` and ``results.md`` summarise all.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from citi.console import console
from citi.evaluation.config import EvalConfig
from citi.evaluation.generation import count_truncated
from citi.evaluation.harness import run_task
from citi.evaluation.intervals import interval
from citi.evaluation.metrics import metric_info
from citi.evaluation.registry import get_task
from citi.evaluation.reuse import data_location, model_dtype, reusable, settings_key
from citi.evaluation.tables import markdown_table
from citi.evaluation.task import Task, TaskContext
from citi.io import atomic_path, fingerprint, write_json_atomic, write_text_atomic
from citi.precision import resolve_precision, weights_dtype


def add_interval(metrics: dict, primary: str, records: list[dict]) -> None:
    """Put a 95% interval of the primary metric (Wilson or bootstrap, from the per-sample
    scores) under ``metrics["ci"][primary]``; verdict tasks score each sample as ``correct``."""
    if not records:
        return
    key = next((k for k in (primary, "correct") if k in records[0].get("scores", {})), None)
    if key is None:
        return
    values = [r["scores"][key] for r in records if isinstance(r["scores"].get(key), int | float)]
    # A per-example KL of exactly 0 (an unchanged model) is a mean of scores, not a share.
    ci = interval(values, share=metric_info(primary).share)
    if ci is not None:
        metrics.setdefault("ci", {})[primary] = ci


def evaluate(
    config: EvalConfig, out_dir: str | Path, *, loaded=None, variant: str | None = None, judge=None
) -> dict:
    """Run ``config.tasks`` and write results under ``out_dir``; finished tasks are skipped.

    ``loaded`` evaluates an already-built model (e.g. one with replaced weights) instead of
    loading ``config.model`` + ``config.adapter``, and ``variant`` names it in the resume key
    and the results. ``judge`` (a :class:`citi.evaluation.judge.Judge`) rates the judged tasks;
    tasks that need one are skipped, with a message, without it.
    ``config.eval_data``: the held-out conversations of the tasks on the user's data
    (``tool-calls``), rendered with ``config.chat_template`` in place of citi's choice.
    """
    from citi.evaluation import sandbox

    out = Path(out_dir)
    tasks = [get_task(t) for t in config.tasks]
    sandbox.clean_stale_sandboxes()
    eval_data, chat_template = config.eval_source(), config.chat_template
    dtype, max_length = config.dtype, config.max_length
    if loaded is not None:  # an already-built model runs in the dtype it has
        import torch

        on_bf16 = next(loaded.model.parameters()).dtype == torch.bfloat16
        precision = "bf16" if on_bf16 else "fp32"
    else:
        from citi.models.loader import default_device

        precision = resolve_precision(config.precision, config.device or default_device())
        if dtype not in (None, "auto"):  # explicit weights decide what runs (no autocast here)
            precision = {"bfloat16": "bf16", "float16": "fp16"}.get(dtype, "fp32")
    # The weights' dtype and the data directory are part of every task's settings.
    weights = model_dtype(loaded.model) if loaded is not None else weights_dtype(dtype, precision)
    data = data_location(config.data_dir)
    results: dict = {
        "model": config.model,
        "adapter": config.adapter,
        "variant": variant,
        "limit": config.limit,
        "precision": precision,
        "dtype": weights,
        "data_dir": data,
        "tasks": {},
    }
    common = {k: results[k] for k in ("model", "adapter", "variant", "precision", "dtype")}
    common |= {"data_dir": data, "max_length": max_length}  # what a finished task records
    if judge is not None and judge.cache_dir is None:
        judge.cache_dir = out / "judge-cache"
    for task in tasks:
        if task.needs_judge and judge is None:
            reason = "skipped: needs a judge endpoint (--judge-url URL --judge-model NAME)"
            console.print(f"[yellow]{task.name}: {reason}[/yellow]")
            results.setdefault("skipped", {})[task.name] = reason
            continue
        done = out / "tasks" / f"{task.name}.json"
        judged = f"|judge={judge.model}@{judge.url}" if judge and task.uses_judge else ""
        bf16 = (
            "|bf16+fp32-trained" if config.adapter else "|bf16"
        )  # redo results of rounded updates
        run_id = f"{config.adapter}|{variant}{judged}" + (bf16 if precision == "bf16" else "")
        if task.load is not None:
            if callable(eval_data):  # read once (EvalConfig.held_out), keyed by what it read
                eval_data = eval_data()
            run_id += f"|data={fingerprint(eval_data)}|template={fingerprint(chat_template)}"
        run_id += f"|dtype={weights}|data={data}"
        limit = config.limit_of(task.name)
        key = settings_key(task, config.model, run_id, limit, max_length)
        settings = {**common, "judge": judged[1:] or None, "limit": limit}
        finished = reusable(done, key, settings, task.name)
        if finished is not None:
            results["tasks"][task.name] = finished
            results["dtype"] = finished.get("dtype", weights)
            continue
        if loaded is None:
            from citi.adapters import load_for_eval

            loaded = load_for_eval(
                config.model, config.adapter, config.dtype, config.device, precision
            )
            results["dtype"] = model_dtype(loaded.model)  # as loaded, whatever was asked
            if config.compile:
                from citi.models.compiled import compile_in_place

                compile_in_place(loaded.model)
        ctx = TaskContext(
            loaded=loaded,
            batch_size=config.batch_size,
            max_length=max_length,
            data_dir=config.data_dir,
            judge=judge,
            unsafe_code=config.unsafe_code,
            eval_data=eval_data,
            chat_template=chat_template,
            cache=out / "predictions" / f"{task.name}.outputs.json",
            key=key,
        )
        start = time.perf_counter()
        with count_truncated() as truncated:
            result = run_task(task, ctx, limit)
        add_interval(result.metrics, result.primary, result.records)
        entry = _entry(task, key, result, limit, precision, time.perf_counter() - start)
        entry["dtype"] = results["dtype"]
        entry["truncated_prompts"] = truncated[0]  # cut from the left to fit the model's context
        entry["settings"] = settings
        if result.records:
            with atomic_path(out / "predictions" / f"{task.name}.jsonl") as tmp:
                lines = (json.dumps(r, ensure_ascii=False) + "\n" for r in result.records)
                tmp.write_text("".join(lines))
        write_json_atomic(done, entry)
        results["tasks"][task.name] = entry
    write_json_atomic(out / "results.json", results)
    write_text_atomic(out / "results.md", markdown_table([results], [str(out)]))
    return results


def _entry(task: Task, key: str, result, limit, precision: str, seconds: float) -> dict:
    """One finished task as ``tasks/<task>.json`` and ``results.json`` hold it."""
    return {
        "key": key,
        "task": task.name,
        "dataset": task.dataset if isinstance(task.dataset, str) else list(task.dataset),
        "description": task.description,
        "primary": result.primary,
        "metrics": result.metrics,
        "seconds": round(seconds, 2),
        "max_new_tokens": task.max_new_tokens,
        "precision": precision,
        "dtype": None,  # filled in by evaluate
        "limit": limit,
    }
