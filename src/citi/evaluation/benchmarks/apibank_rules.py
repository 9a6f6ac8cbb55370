"""API-Bank value semantics: how each simulated API compares a predicted argument with the
ground truth's, as its own ``check_api_call_correctness`` and ``call`` do (read from the official
repository, written here as data), without executing anything.

A parameter's *declared* type and format come from the API's own description (``int`` values must
be digits, ``bool`` is ``'True'``; ``Format: %Y-%m-%d`` and the like are the only accepted date
forms). How a value is *compared* is the API's own rule: exactly for identifiers, tokens,
passwords and most fields; stripped, case-folded or word-overlapping only where that API relaxes.
Where an API looks its input up or validates it before its checker runs, that step decides too:
DeleteAgenda, ModifyAgenda, QueryAgenda and ModifyReminder find the item by its exact content;
QueryBalance looks up the token as given; SendEmail accepts only the receivers its address
pattern admits.
Defects of the official evaluator are not reproduced; docs/guides/evaluation-fidelity.md lists
each with its place in the official code.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

# Comparison kinds ------------------------------------------------------------------------------
EXACT = "exact"  # the text as given (API-Bank compares inputs with ==)
STRIP = "strip"  # surrounding whitespace ignored
CASELESS = "caseless"  # stripped and case-folded
NO_SPACES = "no_spaces"  # every space removed (Calculator's formula)
WORDS = "words"  # word-set Jaccard of split(" ") > 0.5, case kept (agenda content, meeting topic)
WORDS_CASELESS = "words_caseless"  # the same, lower-cased first (reminder content)
DATE = "date"  # parsed with the declared format, then compared (zero padding ignored)
SCENE_DEVICES = "scene_devices"  # device lists: names case-folded, sorted by name
IGNORED = "ignored"  # the API never compares it


def _api(default: str = EXACT, whole_input: bool = True, **params: str) -> dict:
    """``whole_input``: the API compares its whole input, so an argument the ground truth does not
    give (an optional one) makes the call wrong; otherwise only the listed fields count."""
    return {"default": default, "whole_input": whole_input, "params": params}


_AGENDA = _api(content=WORDS, whole_input=False, token=EXACT, time=EXACT, location=EXACT)
_REMINDER = _api(content=WORDS_CASELESS, whole_input=False, token=EXACT, time=EXACT)
_MEETING = _api(meeting_topic=WORDS)
_DELETE = _api(default=IGNORED, whole_input=False, token=EXACT, time=EXACT)
_SCENE = _api(default=IGNORED, whole_input=False, name=CASELESS, devices=SCENE_DEVICES)

# DeleteAgenda, ModifyAgenda, QueryAgenda and ModifyReminder look the item up before their
# checker, `database[key]['content'] == content or database[key]['time'] == time`
# (apis/delete_agenda.py:75, modify_agenda.py:77, query_agenda.py:76, modify_reminder.py:101),
# and raise when nothing is found. The recorded agenda items have dates without a clock time
# (init_database/Agenda.json), which no time in the declared format equals, and a modification's
# time is the new one: only the exact content finds the item, so the checker's word overlap never
# gets a paraphrase. (DeleteReminder and the meeting APIs look up by content or topic, or by the
# time; their checkers already want the item's exact time, which finds it.)
_AGENDA_LOOKUP = _api(content=EXACT, whole_input=False, token=EXACT, time=EXACT, location=EXACT)
RULES: dict[str, dict] = {
    "AddAgenda": _AGENDA,
    "ModifyAgenda": _AGENDA_LOOKUP,
    "QueryAgenda": _AGENDA_LOOKUP,
    "AddReminder": _REMINDER,
    "ModifyReminder": _api(content=EXACT, whole_input=False, token=EXACT, time=EXACT),
    "QueryReminder": _REMINDER,
    "AddMeeting": _MEETING,
    "ModifyMeeting": _MEETING,
    "QueryMeeting": _MEETING,
    "DeleteAgenda": _api(
        default=IGNORED, whole_input=False, token=EXACT, time=EXACT, content=EXACT
    ),
    "DeleteReminder": _DELETE,
    # The official checker reads a 'time' key the meeting has not (KeyError on every call); the
    # intent of the Delete* rule is that the item's time identifies it.
    "DeleteMeeting": _api(
        default=IGNORED, whole_input=False, token=EXACT, start_time=EXACT, end_time=EXACT
    ),
    "AddScene": _SCENE,
    "ModifyScene": _SCENE,
    "DeleteScene": _api(default=IGNORED, whole_input=False, name=CASELESS),
    "QueryScene": _api(default=IGNORED, whole_input=False, name=CASELESS),
    "AppointmentRegistration": _api(
        default=IGNORED, whole_input=False, patient_name=STRIP, date=DATE, doctor_name=STRIP
    ),
    "QueryRegistration": _api(default=IGNORED, whole_input=False, patient_name=STRIP, date=DATE),
    "CancelRegistration": _api(default=IGNORED, whole_input=False, appointment_id=STRIP),
    "ModifyRegistration": _api(
        whole_input=False,
        appointment_id=STRIP,
        new_appointment_date=DATE,
        new_appointment_doctor=EXACT,
    ),
    "Calculator": _api(formula=NO_SPACES),
    "TimedSwitch": _api(whole_input=False, name=CASELESS, time=DATE, on=EXACT),
    "CancelTimedSwitch": _api(whole_input=False, name=CASELESS, time=DATE),
    "DocumentQA": _api(whole_input=False, url=STRIP, question=STRIP),
    "EmergencyKnowledge": _api(whole_input=False, symptom=CASELESS),
    "SymptomSearch": _api(whole_input=False, symptom=CASELESS),
    # The checker strips the token, but the look-up before it uses the token as given (the
    # `token.strip()` at apis/query_balance.py:68 discards its result): spaces raise.
    "QueryBalance": _api(whole_input=False, token=EXACT),
    "QueryHealthData": _api(whole_input=False, user_id=CASELESS, start_time=DATE, end_time=DATE),
    "RecordHealthData": _api(whole_input=False, user_id=CASELESS, time=DATE, health_data=EXACT),
    "QueryStock": _api(whole_input=False, stock_code=CASELESS, date=DATE),
    "QueryHistoryToday": _api(whole_input=False, date=DATE),
    "SendEmail": _api(whole_input=False, receiver=CASELESS, subject=STRIP, content=STRIP),
    # Compared by their output only; the output is a deterministic function of these inputs, and
    # a lookup that ignores case is assumed (the services are not run here).
    "Dictionary": _api(default=IGNORED, whole_input=False, keyword=CASELESS),
    "Wiki": _api(default=IGNORED, whole_input=False, keyword=CASELESS),
    "SearchEngine": _api(default=IGNORED, whole_input=False, keyword=CASELESS),
    "PlayMusic": _api(default=IGNORED, whole_input=False, music_name=CASELESS),
    "Translate": _api(default=IGNORED, whole_input=False, src=EXACT, tgt_lang=CASELESS),
    "GetToday": _api(default=IGNORED, whole_input=False),
}

# Validations an API runs on a (stripped) argument before anything else: a value that does not
# fully match raises. SendEmail's address pattern (apis/send_email.py:84) admits lower case only
# before the '@'; its subject and content must not be empty (send_email.py:95-99).
VALIDATIONS: dict[str, dict[str, re.Pattern]] = {
    "SendEmail": {
        "receiver": re.compile(r"[a-z0-9]+[._]?[a-z0-9]+@\w+[.]\w{2,3}"),
        "subject": re.compile(r".+", re.DOTALL),
        "content": re.compile(r".+", re.DOTALL),
    },
}


def passes_validation(api: str, param: str, value: Any, level: str = "2") -> bool:
    pattern = VALIDATIONS.get(api, {}).get(param) if level != "3" else None
    return pattern is None or pattern.fullmatch(text(value).strip()) is not None


# Parameters with a default in the API's call signature: they may be left out.
OPTIONAL = {
    "ForgotPassword": {"username", "email", "verification_code", "new_password"},
    "ModifyRegistration": {"new_appointment_date", "new_appointment_doctor"},
    "RecordHealthData": {"health_data"},
    "Translate": {"src_lang", "tgt_lang"},
}

# Declared formats, as the descriptions write them ("Format: %Y-%m-%d", "in the pattern of ...").
_FORMAT = re.compile(r"(%[A-Za-z](?:[-: /]*%[A-Za-z])*)")


def declared_format(description: str) -> str | None:
    match = _FORMAT.search(description or "")
    return match.group(1) if match else None


def text(value: Any) -> str:
    """A value as the official regex parser sees it: everything is text."""
    return value if isinstance(value, str) else str(value)


def _words(value: str, lower: bool) -> set[str]:
    return set((value.lower() if lower else value).split(" "))


def word_overlap(pred: str, gold: str, lower: bool = False) -> bool:
    a, b = _words(pred, lower), _words(gold, lower)
    return len(a & b) / len(a | b) > 0.5


def parse_date(value: str, fmt: str) -> datetime | None:
    try:
        return datetime.strptime(value.strip(), fmt)
    except ValueError:
        return None


def _devices(value: Any) -> list | None:
    if not isinstance(value, list) or not all(isinstance(d, dict) for d in value):
        return None
    return sorted(
        (text(d.get("name", "")).strip().lower(), text(d.get("description", "")).strip())
        for d in value
    )


def typed(value: Any, spec: dict | None) -> tuple[bool, Any]:
    """(valid, value) for the declared type: int must be digits, float a decimal, bool is
    ``value == 'True'`` (as the official tool manager converts them); others pass unchanged."""
    declared = (spec or {}).get("type", "str")
    if declared == "int":
        t = text(value)
        return (True, int(t)) if t.isdigit() else (False, value)
    if declared == "float":
        t = text(value)
        return (True, float(t)) if t.replace(".", "", 1).isdigit() else (False, value)
    if declared == "bool":
        return True, text(value) == "True"
    return True, value


def values_match(kind: str, pred: Any, gold: Any, spec: dict | None) -> bool:
    """One argument under a comparison kind; both sides already converted by :func:`typed`."""
    if kind == IGNORED:
        return True
    if not isinstance(pred, str) or not isinstance(gold, str):
        if kind == SCENE_DEVICES:
            return _devices(pred) is not None and _devices(pred) == _devices(gold)
        if isinstance(pred, list | dict) or isinstance(gold, list | dict):
            return pred == gold
        return pred == gold if type(pred) is type(gold) else text(pred) == text(gold)
    fmt = declared_format((spec or {}).get("description", ""))
    if kind == DATE and fmt:
        p, g = parse_date(pred, fmt), parse_date(gold, fmt)
        return p is not None and p == g
    if kind == STRIP:
        return pred.strip() == gold.strip()
    if kind == CASELESS:
        return pred.strip().lower() == gold.strip().lower()
    if kind == NO_SPACES:
        return pred.replace(" ", "") == gold.replace(" ", "")
    if kind in (WORDS, WORDS_CASELESS):
        return word_overlap(pred, gold, lower=kind == WORDS_CASELESS)
    return pred == gold


def format_ok(pred: Any, spec: dict | None) -> bool:
    """A declared date/time format is the only form the API accepts (it raises otherwise)."""
    fmt = declared_format((spec or {}).get("description", ""))
    if not fmt or not isinstance(pred, str):
        return True
    return parse_date(pred, fmt) is not None


def rule_of(api: str, param: str, level: str = "2") -> str:
    rule = rules_for(level).get(api)
    if rule is None:
        return EXACT
    return rule["params"].get(param, rule["default"])


def compares_whole_input(api: str, level: str = "2") -> bool:
    return rules_for(level).get(api, {}).get("whole_input", True)


# Level 3 uses its own APIs (lv3_apis/), some with the names of level-1/2 ones but other
# parameters; most compare their whole input exactly.
RULES_LV3: dict[str, dict] = {
    "AddMeeting": _api(meeting_topic=WORDS),
    "Calculator": _api(formula=NO_SPACES),
    "EmailReminder": _api(content=IGNORED),
    "HotelAvailability": _api(
        default=IGNORED,
        whole_input=False,
        destination=EXACT,
        check_in_date=EXACT,
        check_out_date=EXACT,
    ),
    "TaxCalculator": _api(default=IGNORED, whole_input=False, salary=EXACT),
}


def rules_for(level: str) -> dict[str, dict]:
    return RULES_LV3 if level == "3" else RULES
