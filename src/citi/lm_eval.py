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
checkers run offline the way ``citi eval`` does (see citi.evaluation.ifeval).
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
DATASET_FIELDS = {"gsm8k_train": "gsm8k", "gsm8k_test": "gsm8k-test", "ifeval": "ifeval"}


def render_tasks(out: Path, data_dir: str | Path | None) -> list[str]:
    """Write the offline task YAMLs into ``out``, their fields filled in: the raw data files
    (found as citi finds them), lm-eval's task folder and ``out`` itself (where the held-out
    TriviaQA split is written as JSONL). A task whose data is absent is left out. Returns the
    task names written."""
    import lm_eval.tasks

    from citi.data.loading import dataset_files

    source = next((d for d in template_dirs() if d.is_dir()), None)
    if source is None:
        raise CitiError(f"no configs/{TASK_TEMPLATES}/ folder here or beside the citi package")
    values = {"lm_eval_tasks": str(Path(lm_eval.tasks.__file__).parent), "render_dir": str(out)}
    for field_name, dataset in DATASET_FIELDS.items():
        with contextlib.suppress(CitiError):
            values[field_name] = str(dataset_files(dataset, data_dir)[0].resolve())
    if _write_triviaqa_heldout(out / "triviaqa_heldout.jsonl", data_dir):
        values["triviaqa_heldout"] = str(out / "triviaqa_heldout.jsonl")
    names = []
    for template in sorted(source.glob("*.yaml")):
        try:
            text = string.Template(template.read_text(encoding="utf-8")).substitute(values)
        except KeyError:
            continue  # its dataset is not in this data directory
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
            from citi.adapters import load_adapter
            from citi.export import find_adapter_dir
            from citi.models import DEFAULT_MODEL, load_model
            from citi.precision import resolve_precision, weights_dtype

            device = device or ("cuda" if _cuda() else "cpu")
            resolved = resolve_precision(precision, device)
            loaded = load_model(
                pretrained or DEFAULT_MODEL,
                dtype=weights_dtype(dtype, resolved),
                device=device,
            )
            if adapter:
                load_adapter(loaded.model, find_adapter_dir(adapter))
            loaded.model.eval()
            self.citi_precision = resolved
            super().__init__(pretrained=loaded.model, tokenizer=loaded.tokenizer, **kwargs)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def run(argv: list[str], data_dir: str | Path | None = None) -> int:
    """lm-eval's CLI with the ``citi`` model registered and the offline tasks included."""
    from lm_eval.__main__ import cli_evaluate

    from citi.evaluation.ifeval import _checkers

    register_model()
    _checkers()  # IFEval's checkers without NLTK downloads (the same patch `citi eval` uses)
    with tempfile.TemporaryDirectory(prefix="citi-lm-eval-") as tmp:
        render_tasks(Path(tmp), data_dir)
        args = list(argv)
        if "--include_path" not in args:
            args += ["--include_path", tmp]
        old = sys.argv
        sys.argv = ["lm-eval", *args]
        try:
            cli_evaluate()
        except SystemExit as exit_:
            return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
        finally:
            sys.argv = old
    return 0


def main() -> int:
    """``python -m citi.lm_eval ARGS``: the data directory comes from $CITI_DATA_DIR."""
    try:
        return run(sys.argv[1:])
    except CitiError as err:
        print(f"citi lm-eval: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
