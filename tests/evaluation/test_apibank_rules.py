"""API-Bank rules that come from what a simulated API does before its checker: a look-up of the
item or the token, a validation of the input (read from the official apis/*.py)."""

import json

import pytest

from citi.evaluation.benchmarks import apibank

TIME = ("str", "Format: %Y-%m-%d %H:%M:%S")
AGENDA_SPEC = {
    "token": ("str", "t"),
    "content": ("str", "c"),
    "time": TIME,
    "location": ("str", "l"),
}
SPECS = {
    "DeleteAgenda": AGENDA_SPEC,
    "ModifyAgenda": AGENDA_SPEC,
    "QueryAgenda": AGENDA_SPEC,
    "AddAgenda": AGENDA_SPEC,
    "ModifyReminder": {"token": ("str", "t"), "content": ("str", "c"), "time": TIME},
    "AddReminder": {"token": ("str", "t"), "content": ("str", "c"), "time": TIME},
    "QueryBalance": {"token": ("str", "The token of the user.")},
    "SendEmail": {"receiver": ("str", "r"), "subject": ("str", "s"), "content": ("str", "c")},
}


def _score(pred: str, gold: str) -> str:
    api = gold[1 : gold.index("(")]
    spec = {k: {"type": t, "description": d} for k, (t, d) in SPECS[api].items()}
    prompt = "API descriptions:\n" + json.dumps({"name": api, "input_parameters": spec})
    return apibank.score_api_sample(pred, gold, prompt)


AGENDA = "token='a9', content='Meeting with client', time='2023-03-18 14:00:00', location='Main St'"
MAIL = "receiver='john.doe@example.com', subject='Hello', content='See you.'"


@pytest.mark.parametrize(
    "gold, pred, verdict",
    [
        # DeleteAgenda finds the item by its exact content; its checker then wants the time.
        (f"[DeleteAgenda({AGENDA})]", f"[DeleteAgenda({AGENDA})]", apibank.CORRECT),
        (
            f"[DeleteAgenda({AGENDA})]",
            "[DeleteAgenda(token='a9', content='Meeting with the client', "
            "time='2023-03-18 14:00:00', location='Main St')]",
            apibank.INPUT_MISMATCH,
        ),
        (  # the location is never compared
            f"[DeleteAgenda({AGENDA})]",
            "[DeleteAgenda(token='a9', content='Meeting with client', "
            "time='2023-03-18 14:00:00', location='Office')]",
            apibank.CORRECT,
        ),
        # ModifyAgenda: the word overlap of its checker never sees a paraphrase (over 0.5 here)
        (
            f"[ModifyAgenda({AGENDA})]",
            "[ModifyAgenda(token='a9', content='Meeting with client today', "
            "time='2023-03-18 14:00:00', location='Main St')]",
            apibank.INPUT_MISMATCH,
        ),
        (f"[ModifyAgenda({AGENDA})]", f"[ModifyAgenda({AGENDA})]", apibank.CORRECT),
        (
            f"[QueryAgenda({AGENDA})]",
            "[QueryAgenda(token='a9', content='meeting with client', "
            "time='2023-03-18 14:00:00', location='Main St')]",
            apibank.INPUT_MISMATCH,
        ),
        # ... while AddAgenda, which looks nothing up, keeps the word overlap
        (
            f"[AddAgenda({AGENDA})]",
            "[AddAgenda(token='a9', content='Meeting with client today', "
            "time='2023-03-18 14:00:00', location='Main St')]",
            apibank.CORRECT,
        ),
        # ModifyReminder: exact content, case included (the checker alone lower-cases)
        (
            "[ModifyReminder(token='a9', content='Call mom', time='2023-03-17 14:30:00')]",
            "[ModifyReminder(token='a9', content='call mom', time='2023-03-17 14:30:00')]",
            apibank.INPUT_MISMATCH,
        ),
        (
            "[AddReminder(token='a9', content='Call mom', time='2023-03-17 14:30:00')]",
            "[AddReminder(token='a9', content='call mom', time='2023-03-17 14:30:00')]",
            apibank.CORRECT,
        ),
        # QueryBalance looks the token up as given, spaces included
        ("[QueryBalance(token='z9x8')]", "[QueryBalance(token=' z9x8')]", apibank.INPUT_MISMATCH),
        ("[QueryBalance(token='z9x8')]", "[QueryBalance(token='z9x8')]", apibank.CORRECT),
        # SendEmail: the receiver must pass the API's lower-case address pattern (it raises
        # otherwise), then it is compared case-folded; empty subject or content raise
        (
            f"[SendEmail({MAIL})]",
            "[SendEmail(receiver='John.Doe@example.com', subject='Hello', content='See you.')]",
            apibank.HAS_EXCEPTION,
        ),
        (
            f"[SendEmail({MAIL})]",
            "[SendEmail(receiver=' john.doe@Example.COM ', subject='Hello', content='See you.')]",
            apibank.CORRECT,
        ),
        (
            f"[SendEmail({MAIL})]",
            "[SendEmail(receiver='john.doe@example.com', subject='  ', content='See you.')]",
            apibank.HAS_EXCEPTION,
        ),
        # a trailing comma in the call is a call, as the official extractor reads it
        (f"[SendEmail({MAIL})]", f"[SendEmail({MAIL},)]", apibank.CORRECT),
    ],
)
def test_lookups_and_validations_before_the_checker(gold, pred, verdict):
    assert _score(pred, gold) == verdict
