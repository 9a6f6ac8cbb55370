"""Tool calls read back from model output and scored against reference calls and JSON Schemas."""

from citi.evaluation.toolcalls.check import check_calls
from citi.evaluation.toolcalls.parse import ParsedOutput, hermes_call_text, parse_tool_calls
from citi.evaluation.toolcalls.score import aggregate_turns, score_turn

__all__ = [
    "ParsedOutput",
    "aggregate_turns",
    "check_calls",
    "hermes_call_text",
    "parse_tool_calls",
    "score_turn",
]
