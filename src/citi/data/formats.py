"""Loaders of the raw public formats: each reads one file into :class:`citi.data.Example`s,
checking every record against the small schema of its format (file, record and field named).

Every loader is :func:`citi.data.records.load_records` with its format's ``Schema`` and a
``build(index, record)`` that makes the example(s) of one record."""

from __future__ import annotations

import random
import re
from pathlib import Path

from citi.data.example import GENERAL, TOOL, Example, single_turn
from citi.data.records import ListOf, Schema, load_records
from citi.data.spec import DatasetSpec
from citi.errors import DataError

# TriviaQA ships here as one 3000-question file: a fixed seeded permutation splits it into a
# disjoint evaluation part (the first EVAL_SIZE indices) and a training/importance part.
TRIVIAQA_SPLIT_SEED = 2025
OPT_TEXT = (str, type(None))
TRIVIAQA_EVAL_SIZE = 1000


def _join(instruction: str, inp: str) -> str:
    """Alpaca-style prompt: instruction, then the (non-empty) input on the next line."""
    inp = inp or ""
    return f"{instruction}\n{inp}" if inp.strip() else instruction


def _alpaca(path: Path, spec: DatasetSpec, answer_key: str = "output") -> list[Example]:
    def build(i: int, rec: dict) -> Example:
        return single_turn(
            _join(rec["instruction"], rec.get("input", "")),
            rec[answer_key],
            task_type=spec.task_type,
            ability=spec.ability,
            source=spec.name,
            index=i,
        )

    schema = Schema({"instruction": str, answer_key: str}, {"input": OPT_TEXT})
    return load_records(path, schema, build)


def _apis_file(path: Path, name: str) -> str | None:
    """The API descriptions beside an API-Bank test file (for executing ToolSearcher)."""
    candidate = path.parent.parent / "apis" / name
    return str(candidate) if candidate.is_file() else None


def _apibank(path: Path, spec: DatasetSpec, answer_key: str, apis: str, ids) -> list[Example]:
    """API-Bank's level-1/2 test files and its level-3 file: one prompt and answer a record;
    ``ids(i, rec)`` gives the record's identifying fields."""
    apis_file = _apis_file(path, apis)

    def build(i: int, rec: dict) -> Example:
        return single_turn(
            _join(rec["instruction"], rec["input"]),
            rec[answer_key],
            task_type=TOOL,
            ability="tool",
            source=spec.name,
            **ids(i, rec),
            apis_file=apis_file,
        )

    schema = Schema({"instruction": str, "input": str, answer_key: str})
    return load_records(path, schema, build)


def _apibank_test(path: Path, spec: DatasetSpec) -> list[Example]:
    def ids(i: int, rec: dict) -> dict:
        return {"file": rec.get("file"), "id": rec.get("id", i)}

    return _apibank(path, spec, "expected_output", "api_descriptions_at_recording.json", ids)


def _apibank_l3(path: Path, spec: DatasetSpec) -> list[Example]:
    def ids(i: int, rec: dict) -> dict:
        return {"sample_id": rec.get("sample_id"), "api_id": rec.get("api_id")}

    return _apibank(path, spec, "output", "api_descriptions_lv3.json", ids)


METAMATH = Schema({"query": str, "response": str})


def _metamath(path: Path, spec: DatasetSpec) -> list[Example]:
    def build(i: int, rec: dict) -> Example:
        return single_turn(
            rec["query"],
            rec["response"],
            task_type=GENERAL,
            ability="math",
            source=spec.name,
            index=i,
        )

    return load_records(path, METAMATH, build)


GSM8K_CALC = re.compile(r"<<[^>]*>>")
GSM8K = Schema({"question": str, "answer": str})


def gsm8k_final_answer(answer: str) -> str:
    """The number after ``####`` in a GSM8K solution, commas removed."""
    return answer.rsplit("####", 1)[-1].strip().replace(",", "")


def _gsm8k(path: Path, spec: DatasetSpec) -> list[Example]:
    def build(i: int, rec: dict) -> Example:
        if "####" not in rec["answer"]:
            raise DataError(f"{path}: record {i + 1}: answer has no '#### <number>' line")
        return single_turn(
            rec["question"],
            # The calculator annotations are tool markup, not text a model should learn to write.
            GSM8K_CALC.sub("", rec["answer"]),
            task_type=GENERAL,
            ability="math",
            source=spec.name,
            index=i,
            final=gsm8k_final_answer(rec["answer"]),
        )

    return load_records(path, GSM8K, build)


def _triviaqa_question(context: str) -> str:
    q = context.strip()
    q = q.removeprefix("Question:").strip()
    return q.removesuffix("Answer:").strip()


def triviaqa_split(n: int) -> tuple[list[int], list[int]]:
    """(train indices, eval indices) of the fixed TriviaQA split, for a file of ``n`` records."""
    order = list(range(n))
    random.Random(TRIVIAQA_SPLIT_SEED).shuffle(order)
    n_eval = min(TRIVIAQA_EVAL_SIZE, n // 3)
    return sorted(order[n_eval:]), sorted(order[:n_eval])


TRIVIAQA = Schema({"context": str, "answer": str}, {"aliases": ListOf(str)})


def _triviaqa(path: Path, spec: DatasetSpec) -> list[Example]:
    def build(i: int, rec: dict) -> Example:
        return single_turn(
            _triviaqa_question(rec["context"]),
            rec["answer"],
            task_type=GENERAL,
            ability="knowledge",
            source=spec.name,
            index=i,
            aliases=rec.get("aliases") or [rec["answer"]],
        )

    def split(n: int) -> list[int]:
        train, evaluation = triviaqa_split(n)
        return evaluation if spec.split == "eval" else train

    return load_records(path, TRIVIAQA, build, indices=split)


IFEVAL = Schema(
    {
        "key": (int, str),
        "prompt": str,
        "instruction_id_list": ListOf(str),
        "kwargs": ListOf(dict),
    }
)


def _ifeval(path: Path, spec: DatasetSpec) -> list[Example]:
    def build(i: int, rec: dict) -> Example:
        if len(rec["kwargs"]) != len(rec["instruction_id_list"]):
            raise DataError(
                f"{path}: record {i + 1}: kwargs has {len(rec['kwargs'])} entries for "
                f"{len(rec['instruction_id_list'])} instructions"
            )
        return single_turn(
            rec["prompt"],
            None,
            task_type=GENERAL,
            ability="instruction",
            source=spec.name,
            key=rec["key"],
            instruction_id_list=rec["instruction_id_list"],
            kwargs=rec["kwargs"],
        )

    return load_records(path, IFEVAL, build)


MTBENCH = Schema(
    {"question_id": (int, str), "turns": ListOf(str, nonempty=True)},
    {"category": OPT_TEXT, "reference": ListOf(str)},
)


def _mtbench(path: Path, spec: DatasetSpec) -> list[Example]:
    def build(i: int, rec: dict) -> Example:
        return single_turn(
            rec["turns"][0],
            None,
            task_type=GENERAL,
            ability="instruction",
            source=spec.name,
            question_id=rec["question_id"],
            category=rec.get("category"),
            turns=rec["turns"],
        )

    return load_records(path, MTBENCH, build)


TOOLALPACA = Schema(
    {
        "Name": str,
        "Instructions": ListOf(str),
        "Golden_Answers": list,
        "Function_Description": dict,
    },
    {
        "NLDocumentation": OPT_TEXT,
        "Documentation": OPT_TEXT,
        "Function_Projection": dict,
    },
)


def _toolalpaca(path: Path, spec: DatasetSpec) -> list[Example]:
    def build(i: int, api: dict) -> list[Example]:
        """One example per instruction of the API."""
        if len(api["Instructions"]) != len(api["Golden_Answers"]):
            raise DataError(
                f"{path}: API {api['Name']!r} has {len(api['Instructions'])} "
                f"instructions but {len(api['Golden_Answers'])} golden answers"
            )
        return [
            single_turn(
                instruction,
                None,
                task_type=TOOL,
                ability="tool",
                source=spec.name,
                api=api["Name"],
                index=j,
                golden=golden,
                functions=api["Function_Description"],
                nl_documentation=api.get("NLDocumentation", ""),
                documentation=api.get("Documentation", ""),
                projection=api.get("Function_Projection", {}),
            )
            for j, (instruction, golden) in enumerate(
                zip(api["Instructions"], api["Golden_Answers"], strict=True)
            )
        ]

    return load_records(path, TOOLALPACA, build)


HUMANEVAL = Schema(
    {"task_id": str, "prompt": str, "test": str, "entry_point": str},
    {"canonical_solution": str},
)


def _humaneval(path: Path, spec: DatasetSpec) -> list[Example]:
    def build(i: int, rec: dict) -> Example:
        prompt = (
            "Complete the following Python function. Reply with the whole function in one "
            f"```python code block.\n\n```python\n{rec['prompt']}```"
        )
        # The -solutions variant answers with the canonical solution: a held-out code reference
        # for retention (HumanEval is never trained on).
        answer = None
        if spec.name.endswith("-solutions"):
            answer = f"```python\n{rec['prompt']}{rec.get('canonical_solution', '')}```"
        return single_turn(
            prompt,
            answer,
            task_type=GENERAL,
            ability="code",
            source=spec.name,
            task_id=rec["task_id"],
            code_prompt=rec["prompt"],
            test=rec["test"],
            entry_point=rec["entry_point"],
            canonical_solution=rec.get("canonical_solution", ""),
        )

    return load_records(path, HUMANEVAL, build)
