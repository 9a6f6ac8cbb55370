"""``citi eval``: run tasks on a model (with an optional trained adapter) and write results.

Each finished task is written to ``OUT/tasks/<task>.json`` (metrics and settings) and
``OUT/predictions/<task>.jsonl`` (prompt, prediction, reference, per-sample scores); a rerun
skips finished tasks with the same settings. ``results.json`` and ``results.md`` summarise all.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

from citi.console import console
from citi.data import encode_all, load_dataset
from citi.data.render import render_prompt
from citi.errors import CitiError
from citi.evaluation.generation import context_length, count_truncated, generate
from citi.evaluation.intervals import interval
from citi.evaluation.metrics import metric_info
from citi.evaluation.reuse import data_location, model_dtype, reusable, settings_key
from citi.evaluation.tables import (  # noqa: F401 (re-exported for the writers)
    RAW_METRICS,
    format_entry,
    format_metric,
    markdown_table,
)
from citi.evaluation.tasks import TASKS, mean_of
from citi.io import atomic_path, fingerprint, read_json, write_json_atomic, write_text_atomic
from citi.precision import resolve_precision, weights_dtype


def get_task(name: str):
    if name not in TASKS:
        import difflib

        close = difflib.get_close_matches(name, list(TASKS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise CitiError(f"--tasks: unknown task {name!r}{hint} (known: {', '.join(TASKS)})")
    return TASKS[name]


def load_for_eval(
    model: str,
    adapter: str | None,
    dtype: str = "auto",
    device: str | None = None,
    precision: str = "fp32",
):
    """A base model, with a citi adapter (MOLoRA / LoRA / UCO / FT weights) applied if given.

    ``precision``: resolved (fp32 or bf16). bf16 loads the frozen weights in bfloat16; what the
    run trained keeps float32 (FT: everything; see citi.adapters.keep_trained_in_float32)."""
    from citi.adapters import load_adapter, trains_every_base_weight
    from citi.models import load_model

    weights = weights_dtype(dtype, precision)
    loaded = load_model(model, dtype=weights, device=device)
    if adapter:
        adapter = Path(adapter) / "final" if (Path(adapter) / "final").is_dir() else adapter
        if weights != "float32" and trains_every_base_weight(loaded.model, adapter):
            loaded = load_model(model, dtype="float32", device=device)
        load_adapter(loaded.model, adapter)
    loaded.model.eval()
    return loaded


def load_task_examples(task, data_dir, limit: int | None):
    """A task's examples; a tuple of datasets is interleaved (a, b, c, a, b, c, ...) with the
    limit split evenly between them."""
    if isinstance(task.dataset, str):
        return load_dataset(task.dataset, data_dir, limit=limit)
    n = len(task.dataset)
    per = None if limit is None else -(-limit // n)
    parts = [load_dataset(d, data_dir, limit=per) for d in task.dataset]
    mixed = [ex for group in itertools.zip_longest(*parts) for ex in group if ex is not None]
    return mixed[:limit] if limit is not None else mixed


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


def run_task(
    loaded,
    task,
    data_dir,
    limit,
    batch_size,
    max_length,
    cache: Path | None = None,
    key: str = "",
    judge=None,
    eval_data=None,
    chat_template=None,
) -> tuple[dict, list[dict]]:
    """Metrics and per-sample records of one task. Generations are saved to ``cache`` before
    scoring, so a rerun after a scoring failure does not generate again."""
    if task.load is not None:  # a task on the user's held-out data
        examples = task.load(eval_data, limit, chat_template)
    else:
        examples = load_task_examples(task, data_dir, limit)

    def generated(make):  # one output per example, cached before scoring or judging
        cached = read_json(cache) if cache is not None and cache.is_file() else None
        if cached and cached.get("key") == key and len(cached["outputs"]) == len(examples):
            return cached["outputs"]
        outputs = make()
        if cache is not None:
            write_json_atomic(cache, {"key": key, "outputs": outputs})
        return outputs

    if task.run is not None:
        metrics, records = task.run(loaded, examples, batch_size, judge, data_dir, generated)
        metrics["examples"] = len(records)
        return metrics, records
    if task.kind == "loglik":
        from citi.loss import mean_label_loss

        # Never longer than the model's context (the prompt's start is cut first, see encode).
        context = context_length(loaded.model, loaded.tokenizer) or max_length
        encoded = encode_all(
            loaded.tokenizer,
            [e for e in examples if e.target is not None],
            min(max_length, context),
        )
        nll = mean_label_loss(
            loaded.model, encoded, loaded.tokenizer.pad_token_id, batch_size, loaded.device
        )
        return {"nll": nll, "examples": len(encoded)}, []
    prompts = [render_prompt(loaded.tokenizer, task.prompt(ex)) for ex in examples]
    outputs = generated(
        lambda: generate(
            loaded.model,
            loaded.tokenizer,
            prompts,
            task.max_new_tokens,
            task.stop,
            batch_size,
            progress=f"eval {task.name}",
        )
    )
    records = []
    for ex, prompt, out in zip(examples, prompts, outputs, strict=True):
        scores = task.score(ex, out)
        records.append(
            {
                "prompt": prompt,
                "prediction": out,
                "reference": ex.reference,
                **{k: v for k, v in ex.meta.items() if k in ("id", "file", "task_id", "index")},
                "scores": scores,
            }
        )
    agg = (task.aggregate or mean_of)([r["scores"] for r in records])
    agg["examples"] = len(records)
    return agg, records


def evaluate_config(config, out_dir: str | Path, loaded=None, variant=None, judge=None) -> dict:
    """:func:`evaluate` with an :class:`citi.evaluation.config.EvalConfig`."""
    return evaluate(
        config.model,
        config.tasks,
        out_dir,
        adapter=config.adapter,
        data_dir=config.data_dir,
        limit=config.limit,
        batch_size=config.batch_size,
        max_length=config.max_length,
        dtype=config.dtype,
        device=config.device,
        loaded=loaded,
        variant=variant,
        judge=judge,
        precision=config.precision,
        task_limits=config.task_limits,
        unsafe_code=config.unsafe_code,
        eval_data=config.eval_source(),
        chat_template=config.chat_template,
    )


def evaluate(
    model: str,
    tasks: list[str],
    out_dir: str | Path,
    adapter: str | None = None,
    data_dir=None,
    limit: int | None = None,
    batch_size: int = 8,
    max_length: int = 2048,
    dtype: str = "auto",
    device: str | None = None,
    loaded=None,
    variant: str | None = None,
    judge=None,
    precision: str = "auto",
    task_limits: dict[str, int] | None = None,
    unsafe_code: bool = False,
    eval_data=None,
    chat_template: str | None = None,
) -> dict:
    """Run ``tasks`` and write results under ``out_dir``; finished tasks are skipped.

    ``loaded`` evaluates an already-built model (e.g. one with replaced weights) instead of
    loading ``model`` + ``adapter``; ``variant`` names it in the resume key and the results.
    ``eval_data``: the held-out conversations of the tasks on the user's data (``tool-calls``):
    a file, folder or hub id, canonical rows in Python or a function returning them;
    ``chat_template`` renders them in place of citi's choice (a file or template text).
    """
    from citi.evaluation import sandbox
    from citi.evaluation.config import EvalConfig

    # Every setting checked (one error line naming the option) before any model is loaded.
    EvalConfig(
        tasks=list(tasks),
        model=model,
        adapter=adapter,
        data_dir=None if data_dir is None else str(data_dir),
        limit=limit,
        task_limits=dict(task_limits or {}),
        batch_size=batch_size,
        max_length=max_length,
        dtype=dtype,
        device=device,
        precision=precision,
        unsafe_code=unsafe_code,
        eval_data=eval_data,
        chat_template=chat_template,
    )
    specs = [get_task(t) for t in tasks]
    sandbox.clean_stale_sandboxes()
    previous, sandbox.UNSAFE_ALLOWED = sandbox.UNSAFE_ALLOWED, unsafe_code
    try:
        return _evaluate(
            model,
            specs,
            Path(out_dir),
            adapter,
            data_dir,
            limit,
            batch_size,
            max_length,
            dtype,
            device,
            loaded,
            variant,
            judge,
            precision,
            task_limits,
            (eval_data, chat_template),
        )
    finally:
        sandbox.UNSAFE_ALLOWED = previous


def _evaluate(
    model,
    specs,
    out,
    adapter,
    data_dir,
    limit,
    batch_size,
    max_length,
    dtype,
    device,
    loaded,
    variant,
    judge,
    precision,
    task_limits,
    user_data=(None, None),
) -> dict:
    eval_data, chat_template = user_data
    if loaded is not None:  # an already-built model runs in the dtype it has
        import torch

        on_bf16 = next(loaded.model.parameters()).dtype == torch.bfloat16
        precision = "bf16" if on_bf16 else "fp32"
    else:
        from citi.models.loader import default_device

        precision = resolve_precision(precision, device or default_device())
        if dtype not in (None, "auto"):  # explicit weights decide what runs (no autocast here)
            precision = {"bfloat16": "bf16", "float16": "fp16"}.get(dtype, "fp32")
    # The weights' dtype and the data directory are part of every task's settings.
    weights = model_dtype(loaded.model) if loaded is not None else weights_dtype(dtype, precision)
    data = data_location(data_dir)
    results = {
        "model": model,
        "adapter": adapter,
        "variant": variant,
        "limit": limit,
        "precision": precision,
        "dtype": weights,
        "data_dir": data,
        "tasks": {},
    }
    common = {k: results[k] for k in ("model", "adapter", "variant", "precision", "dtype")}
    common |= {"data_dir": data, "max_length": max_length}  # what a finished task records
    if judge is not None and judge.cache_dir is None:
        judge.cache_dir = out / "judge-cache"
    for task in specs:
        if task.needs_judge and judge is None:
            reason = "skipped: needs a judge endpoint (--judge-url URL --judge-model NAME)"
            console.print(f"[yellow]{task.name}: {reason}[/yellow]")
            results.setdefault("skipped", {})[task.name] = reason
            continue
        done = out / "tasks" / f"{task.name}.json"
        judged = f"|judge={judge.model}@{judge.url}" if judge and task.run else ""
        bf16 = "|bf16+fp32-trained" if adapter else "|bf16"  # redo results of rounded updates
        run_id = f"{adapter}|{variant}{judged}" + (bf16 if precision == "bf16" else "")
        if task.load is not None:
            if callable(eval_data):  # read once (EvalConfig.held_out), keyed by what it read
                eval_data = eval_data()
            run_id += f"|data={fingerprint(eval_data)}|template={fingerprint(chat_template)}"
        run_id += f"|dtype={weights}|data={data}"
        task_limit = (task_limits or {}).get(task.name, limit)
        key = settings_key(task, model, run_id, task_limit, max_length)
        settings = {**common, "judge": judged[1:] or None, "limit": task_limit}
        finished = reusable(done, key, settings, task.name)
        if finished is not None:
            results["tasks"][task.name] = finished
            results["dtype"] = finished.get("dtype", weights)
            continue
        if loaded is None:
            loaded = load_for_eval(model, adapter, dtype, device, precision)
            results["dtype"] = model_dtype(loaded.model)  # as loaded, whatever was asked
        start = time.perf_counter()
        with count_truncated() as truncated:
            metrics, records = run_task(
                loaded,
                task,
                data_dir,
                task_limit,
                batch_size,
                max_length,
                out / "predictions" / f"{task.name}.outputs.json",
                key,
                judge,
                eval_data,
                chat_template,
            )
        primary = metrics.pop("primary", task.primary)
        add_interval(metrics, primary, records)
        entry = {
            "key": key,
            "task": task.name,
            "dataset": task.dataset if isinstance(task.dataset, str) else list(task.dataset),
            "description": task.description,
            "primary": primary,
            "metrics": metrics,
            "seconds": round(time.perf_counter() - start, 2),
            "max_new_tokens": task.max_new_tokens,
            "precision": precision,
            "dtype": results["dtype"],
            "limit": task_limit,
            "truncated_prompts": truncated[0],  # cut from the left to fit the model's context
            "settings": settings,
        }
        if records:
            with atomic_path(out / "predictions" / f"{task.name}.jsonl") as tmp:
                tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        write_json_atomic(done, entry)
        results["tasks"][task.name] = entry
    write_json_atomic(out / "results.json", results)
    write_text_atomic(out / "results.md", markdown_table([results], [str(out)]))
    return results


# Metrics that are not shares: printed as they are, never as percentages.
def check_results(results, where: Path) -> dict:
    """A results.json read back from disk, checked by shape (one error line naming the file)."""
    tasks = results.get("tasks") if isinstance(results, dict) else None
    ok = isinstance(tasks, dict) and all(
        isinstance(e, dict)
        and isinstance(e.get("primary"), str)
        and isinstance(e.get("metrics"), dict)
        for e in tasks.values()
    )
    if not ok:
        raise CitiError(
            f"{where / 'results.json'}: not a citi results.json (needs tasks: {{name: {{primary, "
            f"metrics}}}})"
        )
    return results
