"""How each metric is printed, compared and given an interval: the one table every writer uses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """How a metric is printed and compared: a share printed as a percentage, or an NLL / KL
    printed as it is; and which direction is better."""

    unit: str  # "percent", "nll" or "kl"
    higher_is_better: bool = True
    share: bool = False  # a share of 0/1 outcomes (Wilson interval), not a mean of scores


# The one table every writer (results.md, eval compare, the report) formats metrics by.
METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("percent", share=True),
    "correctness": MetricInfo("percent", share=True),
    "exact_match": MetricInfo("percent", share=True),
    "exact_match_flexible": MetricInfo("percent", share=True),
    "exact_match_strict": MetricInfo("percent", share=True),
    "pass@1": MetricInfo("percent", share=True),
    "prompt_level_strict": MetricInfo("percent", share=True),
    "rouge_l": MetricInfo("percent"),
    "overall": MetricInfo("percent"),
    "score": MetricInfo("percent"),  # MT-Bench: the judge's 1-10 rating / 10
    "leak": MetricInfo("percent", higher_is_better=False, share=True),
    # tool-calls (citi.evaluation.toolcalls.score): per-turn scores on the user's held-out split
    "ast_accuracy": MetricInfo("percent", share=True),
    "parse_rate": MetricInfo("percent", share=True),
    "call_exact_match": MetricInfo("percent", share=True),
    "tool_name_accuracy": MetricInfo("percent", share=True),
    "argument_f1": MetricInfo("percent"),  # a mean of per-turn F1 (bootstrap interval)
    "missed_call_rate": MetricInfo("percent", higher_is_better=False, share=True),
    "false_call_rate": MetricInfo("percent", higher_is_better=False, share=True),
    "nll": MetricInfo("nll", higher_is_better=False),
    "arg_nll": MetricInfo("nll", higher_is_better=False),  # argument-value tokens only
    "kl": MetricInfo("kl", higher_is_better=False),
}


def metric_info(name: str) -> MetricInfo:
    """The table entry of ``name``; an unlisted metric is a share (printed as a percentage)."""
    return METRICS.get(name, MetricInfo("percent"))
