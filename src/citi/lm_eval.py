"""lm-evaluation-harness on citi models: ``citi lm-eval ...`` (or ``python -m citi.lm_eval ...``).

    citi lm-eval --model citi --model_args pretrained=smollm2-135m-instruct,adapter=runs/citi \
        --tasks gsm8k_offline,ifeval_offline --limit 32 --batch_size 8 --device cpu

The ``citi`` model is lm-eval's ``HFLM`` over a model citi loads (any ``--model`` spec citi
accepts: aliases, GGUF files, directories, hub ids) with a citi adapter (a run directory or its
final/snapshot folder; MOLoRA, LoRA, UCO and FT alike). ``precision`` (auto|fp32|bf16) picks the
weight dtype as ``citi eval`` does.

The plain ``lm_eval`` command does not see models other packages register, so this module
registers ``citi`` and then hands the arguments to lm-eval's own CLI. Before that it renders the
offline task YAMLs of ``configs/lm_eval/`` (tasks that read citi's data directory instead of the
hub) into a temporary folder and adds it with ``--include_path``, and it lets lm-eval's IFEval
checkers run offline the way ``citi eval`` does (see citi.evaluation.benchmarks.ifeval).
"""

from __future__ import annotations

import contextlib
import json
import string
import sys
import tempfile
from pathlib import Path

from citi.errors import CitiError

TASK_TEMPLATES = "lm_eval"  # configs/lm_eval/*.yaml


def template_dirs() -> list[Path]:
    here = Path(__file__).resolve()
    return [Path.cwd() / "configs" / TASK_TEMPLATES, here.parents[2] / "configs" / TASK_TEMPLATES]


# Template field -> the citi dataset whose raw file fills it.
DATASET_FIELDS = {
    "gsm8k_train": "gsm8k",
    "gsm8k_test": "gsm8k-test",
    "ifeval": "ifeval",
    "triviaqa_heldout": "triviaqa-test",
}


def render_tasks(
    out: Path, data_dir: str | Path | None, skipped: dict[str, list[str]] | None = None
) -> list[str]:
    """Write the offline task YAMLs into ``out``, their fields filled in: the raw data files
    (found as citi finds them), lm-eval's task folder and ``out`` itself (where the held-out
    TriviaQA split is written as JSONL). A task whose data is absent is left out (and, given
    ``skipped``, recorded there with the datasets it lacks). Returns the task names written."""
    import lm_eval.tasks

    from citi.data.loading import dataset_files

    source = next((d for d in template_dirs() if d.is_dir()), None)
    if source is None:
        raise CitiError(f"no configs/{TASK_TEMPLATES}/ folder here or beside the citi package")
    values = {"lm_eval_tasks": str(Path(lm_eval.tasks.__file__).parent), "render_dir": str(out)}
    for field_name, dataset in DATASET_FIELDS.items():
        if field_name == "triviaqa_heldout":
            continue  # written below, in the shape lm-eval reads
        with contextlib.suppress(CitiError):
            values[field_name] = str(dataset_files(dataset, data_dir)[0].resolve())
    if _write_triviaqa_heldout(out / "triviaqa_heldout.jsonl", data_dir):
        values["triviaqa_heldout"] = str(out / "triviaqa_heldout.jsonl")
    names = []
    for template in sorted(source.glob("*.yaml")):
        try:
            text = string.Template(template.read_text(encoding="utf-8")).substitute(values)
        except KeyError:  # its dataset is not in this data directory
            if skipped is not None:
                # The placeholders it names (string.Template.get_identifiers is Python 3.11+).
                found = string.Template.pattern.finditer(template.read_text(encoding="utf-8"))
                lacking = dict.fromkeys(m["named"] or m["braced"] for m in found)
                lacking.pop(None, None)  # "$$" escapes name nothing
                skipped[template.stem] = [DATASET_FIELDS[f] for f in lacking if f not in values]
            continue
        (out / template.name).write_text(text, encoding="utf-8")
        names.append(template.stem)
    return names


def _write_triviaqa_heldout(path: Path, data_dir) -> bool:
    """citi's held-out TriviaQA questions in the shape lm-eval's triviaqa task reads."""
    from citi.data.loading import load_dataset

    try:
        examples = load_dataset("triviaqa-test", data_dir)
    except CitiError:
        return False  # no TriviaQA in this data directory: that one task cannot run
    with path.open("w", encoding="utf-8") as fh:
        for ex in examples:
            question = ex.messages[0]["content"].rstrip("?").strip()
            record = {"question": question, "answer": {"aliases": ex.meta["aliases"]}}
            fh.write(json.dumps(record) + "\n")
    return True


def register_model() -> None:
    """Register the ``citi`` model with lm-eval (idempotent)."""
    from lm_eval.api.registry import get_model, register_model
    from lm_eval.models.huggingface import HFLM

    with contextlib.suppress(Exception):
        if get_model("citi") is not None:
            return

    @register_model("citi")
    class CitiLM(HFLM):
        """lm-eval's HFLM over a citi-loaded model with an optional citi adapter."""

        def __init__(
            self,
            pretrained: str | None = None,
            adapter: str | None = None,
            precision: str = "auto",
            device: str | None = None,
            dtype: str | None = None,
            **kwargs,
        ):
            from citi.adapters import load_for_eval
            from citi.export import find_adapter_dir
            from citi.models import DEFAULT_MODEL
            from citi.models.loader import check_device
            from citi.precision import resolve_precision

            device = check_device(device or ("cuda" if _cuda() else "cpu"))
            resolved = resolve_precision(precision, device)
            # As `citi eval` loads it: trained tensors keep float32 in a bf16 evaluation.
            loaded = load_for_eval(
                pretrained or DEFAULT_MODEL,
                str(find_adapter_dir(adapter)) if adapter else None,
                dtype or "auto",
                device,
                resolved,
            )
            self.citi_precision = resolved
            super().__init__(pretrained=loaded.model, tokenizer=loaded.tokenizer, **kwargs)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def run(argv: list[str], data_dir: str | Path | None = None) -> int:
    """lm-eval's CLI with the ``citi`` model registered and the offline tasks included; what
    lm-eval would answer with a traceback or drop silently (no --tasks, an unknown task, a task
    whose data is missing, --output_path under a file) is one error line instead."""
    from lm_eval._cli.harness import HarnessCLI
    from lm_eval.utils import setup_logging

    from citi.data.datadir import resolve_data_dir
    from citi.evaluation.benchmarks.ifeval import _checkers

    data_dir = resolve_data_dir(data_dir)  # a --data-dir that does not exist is named here
    _checkers()  # IFEval's checkers without NLTK downloads (the same patch `citi eval` uses)
    with tempfile.TemporaryDirectory(prefix="citi-lm-eval-") as tmp:
        skipped: dict[str, list[str]] = {}
        render_tasks(Path(tmp), data_dir, skipped)
        args = list(argv)
        if "--include_path" not in args:
            args += ["--include_path", tmp]
        old = sys.argv
        sys.argv = ["lm-eval", *args]
        try:
            setup_logging()
            parser = HarnessCLI()
            parsed = parser.parse_args()
            if getattr(parsed, "command", None) == "run":
                _check_run_args(parsed, skipped, data_dir)
            parser.execute(parsed)
        except SystemExit as exit_:
            return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
        except ValueError as err:
            # lm-eval's own words for task names it cannot find (EvaluatorConfig.process_tasks)
            if not str(err).startswith("Tasks not found"):
                raise
            raise CitiError(
                f"--tasks: {str(err)[len('Tasks not found: ') :]}: no such lm-eval task "
                f"(`lm-eval ls tasks` lists them; citi adds {', '.join(_offline_names())})"
            ) from None
        finally:
            sys.argv = old
    return 0


def _offline_names() -> list[str]:
    source = next((d for d in template_dirs() if d.is_dir()), None)
    return sorted(t.stem for t in source.glob("*.yaml")) if source else []


def _check_run_args(parsed, skipped: dict[str, list[str]], data_dir: Path) -> None:
    """``lm-eval run`` arguments lm-eval itself would fail on late or not at all."""
    from citi.io import check_output

    tasks = [t for entry in parsed.tasks or [] for t in entry.split(",") if t]
    if not tasks and not getattr(parsed, "config", None):
        raise CitiError(
            f"--tasks: no task given (e.g. --tasks {','.join(_offline_names()[:2])}; "
            "`lm-eval ls tasks` lists lm-eval's)"
        )
    for task in tasks:
        if task in skipped:
            raise CitiError(
                f"--tasks: {task} reads {', '.join(skipped[task])}, not found in the data "
                f"directory {data_dir} (see `citi data fetch`, or pass --data-dir)"
            )
    if parsed.output_path:
        # lm-eval writes DIR/<model>/results_*.json, or beside FILE.json; a failure there is
        # only logged and the results are lost after the whole evaluation ran.
        path = Path(parsed.output_path)
        json_file = path.suffix == ".json"
        check_output(path, "file" if json_file else "dir", option="--output_path")


def main() -> int:
    """``python -m citi.lm_eval ARGS``: the data directory comes from $CITI_DATA_DIR."""
    try:
        return run(sys.argv[1:])
    except CitiError as err:
        print(f"citi lm-eval: error: {err}", file=sys.stderr)
        return err.exit_code


# `import citi.lm_eval` registers the model, as lm-eval's external model packages do, so that
# lm_eval.simple_evaluate(model="citi", ...) works in Python too.
register_model()

if __name__ == "__main__":
    sys.exit(main())
