import pytest

from citi.evaluation.apicall import parse_calls, parse_first_call


@pytest.mark.parametrize(
    "text, name, args",
    [
        (
            "API-Request: [GetUserToken(username='u1', password='p')]",
            "GetUserToken",
            {"username": "u1", "password": "p"},
        ),
        ('[A(x="double \\"q\\"", y=\'it\\\'s\')]', "A", {"x": 'double "q"', "y": "it's"}),
        ("[A(n=3, f=-2.5, b=True, z=None)]", "A", {"n": 3, "f": -2.5, "b": True, "z": None}),
        ("[A(items=['a', 1, [2]], d={'k': 'v'})]", "A", {"items": ["a", 1, [2]], "d": {"k": "v"}}),
        (
            "[T(date=2023-10-15, time=10:00 AM, who=Dr. Smith)]",
            "T",
            {"date": "2023-10-15", "time": "10:00 AM", "who": "Dr. Smith"},
        ),
        # API-Bank's own ground truth has unescaped quotes inside quoted values.
        (
            "[AddMeeting(attendees='['John', 'Ann']', n=1)]",
            "AddMeeting",
            {"attendees": "['John', 'Ann']", "n": 1},
        ),
        ("[Calculator(formula='(5+6)*3')]", "Calculator", {"formula": "(5+6)*3"}),
        ("[NoArgs()]", "NoArgs", {}),
        ("noise [[ [Real(a='1')] trailing", "Real", {"a": "1"}),
    ],
)
def test_parses(text, name, args):
    call = parse_first_call(text)
    assert call is not None and call.name == name and call.args == args


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no call at all",
        "[Unclosed(a='1'",
        "[A(a='unterminated)]",
        "[A(=1)]",
        "[A(x=)]",
        "[" * 5000,
        "[A(x=" + "[" * 100 + "]" * 100 + ")]",
        "API-Request: PharmacyLocator(x=1)",
    ],
)
def test_malformed_or_adversarial_outputs_yield_no_call(text):
    assert parse_first_call(text) is None


def test_never_evaluates_code():
    # A value that would do something if eval()-ed is just text.
    call = parse_first_call("[A(x=__import__('os').system('echo hi'))]")
    assert call is None or isinstance(call.args.get("x"), str)


def test_all_calls_in_order():
    calls = parse_calls("[A(x=1)] then [B(y='2')]")
    assert [c.name for c in calls] == ["A", "B"]
