"""``citi eval`` against lm-evaluation-harness on the same samples: prompts, generations, scores.

    .venv/bin/python benchmarks/lm_eval_crosscheck.py CITI_EVAL_DIR LM_EVAL_DIR

CITI_EVAL_DIR is a ``citi eval --tasks gsm8k,ifeval --out`` folder; LM_EVAL_DIR a
``citi lm-eval --tasks gsm8k_citi_prompt,ifeval_offline --apply_chat_template --log_samples
--output_path`` folder for the same model and --limit. Per task it prints how many prompts and
greedy generations are identical, both tools' aggregate scores, and, on the samples whose
generations are identical (so only the scoring can differ), how many per-sample verdicts
disagree, with the first few disagreements.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

# citi task -> (lm-eval task, [(citi score, lm-eval filter, lm-eval metric)])
PAIRS = {
    "gsm8k": (
        "gsm8k_citi_prompt",
        [
            ("exact_match_strict", "strict-match", "exact_match"),
            ("exact_match_flexible", "flexible-extract", "exact_match"),
        ],
    ),
    "ifeval": (
        "ifeval_offline",
        [
            ("prompt_level_strict", "none", "prompt_level_strict_acc"),
            ("prompt_level_loose", "none", "prompt_level_loose_acc"),
            ("inst_strict", "none", "inst_level_strict_acc"),
            ("inst_loose", "none", "inst_level_loose_acc"),
        ],
    ),
}


def _value(v):
    """lm-eval writes some sample fields as Python literals in strings."""
    if isinstance(v, str):
        try:
            return ast.literal_eval(v)
        except (ValueError, SyntaxError):
            return v
    return v


def _verdict(v):
    v = _value(v)
    if isinstance(v, list):
        return [bool(x) for x in v]
    return bool(v)


def citi_samples(folder: Path, task: str) -> dict[int, dict]:
    rows = [json.loads(line) for line in open(folder / "predictions" / f"{task}.jsonl")]
    # rows are in dataset order; some tasks also record the index
    return {
        int(r.get("index", i)): {**r, "scores": _value(r["scores"])} for i, r in enumerate(rows)
    }


def lm_eval_samples(folder: Path, task: str) -> dict[tuple[int, str], dict]:
    (path,) = sorted(folder.rglob(f"samples_{task}_*.jsonl"))[-1:]
    out = {}
    for line in open(path):
        r = json.loads(line)
        out[(int(r["doc_id"]), r["filter"])] = r
    return out


def compare(citi_dir: Path, lm_dir: Path) -> None:
    for task, (lm_task, metrics) in PAIRS.items():
        if not (citi_dir / "predictions" / f"{task}.jsonl").is_file():
            continue
        ours, theirs = citi_samples(citi_dir, task), lm_eval_samples(lm_dir, lm_task)
        docs = sorted(ours)
        first_filter = metrics[0][1]
        same_prompt = same_gen = 0
        identical = []
        for i in docs:
            lm = theirs[(i, first_filter)]
            args = _value(lm["arguments"])
            prompt = args["gen_args_0"]["arg_0"]
            generation = _value(lm["resps"])[0][0]
            same_prompt += prompt == ours[i]["prompt"]
            if generation == ours[i]["prediction"]:
                same_gen += 1
                identical.append(i)
        print(f"{task} vs {lm_task}: {len(docs)} samples")
        print(f"  identical prompts      {same_prompt}/{len(docs)}")
        print(f"  identical generations  {same_gen}/{len(docs)}")
        for ours_key, lm_filter, lm_metric in metrics:
            mine = [_verdict(ours[i]["scores"][ours_key]) for i in docs]
            lms = [_verdict(theirs[(i, lm_filter)][lm_metric]) for i in docs]

            def mean(vs):
                flat = [x for v in vs for x in (v if isinstance(v, list) else [v])]
                return sum(flat) / max(len(flat), 1)

            disagree = [
                i
                for i in identical
                if _verdict(ours[i]["scores"][ours_key])
                != _verdict(theirs[(i, lm_filter)][lm_metric])
            ]
            print(
                f"  {ours_key:<22} citi {mean(mine):.4f}  lm-eval {mean(lms):.4f}  "
                f"disagreements on identical generations: {len(disagree)}/{len(identical)}"
                + (f" (docs {disagree[:5]})" if disagree else "")
            )


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    compare(Path(sys.argv[1]), Path(sys.argv[2]))


if __name__ == "__main__":
    main()
