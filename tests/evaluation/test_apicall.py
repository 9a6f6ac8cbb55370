import pytest

from citi.evaluation.apicall import CallParser, parse_calls, parse_first_call


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
        # A trailing comma: API-Bank's regex extractor reads these as calls.
        ("[X(a='1',)]", "X", {"a": "1"}),
        ("[X(a='1', b=2 , )]", "X", {"a": "1", "b": 2}),
        ("[X(when=10:00 AM,)]", "X", {"when": "10:00 AM"}),
        ("[X(items=['a', 'b',], d={'k': 1,},)]", "X", {"items": ["a", "b"], "d": {"k": 1}}),
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
        "[X(,)]",
        "[X(a='1',,)]",
        "[X(a=[1,,2])]",
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


# Hostile outputs: unfinished calls repeated, each a place where a call may start. The parser's
# work (CallParser.steps: rule evaluations, table look-ups, characters matched) must grow
# linearly with the text; the previous parser rescanned the tail once per attempt (quadratic:
# over 20 s for 64 KB of the first one).
HOSTILE_UNITS = [
    "[A(x='",
    '[A(x="',
    "[A(b=1, x='",
    "[A(x=a",
    "[A(x=[a, b",
    "[A(x=['",
    "[A(x={a:[",
    "[A(x=[1,[",
    "[A(x='1', y=",
    "[A(x=\\'",
]


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
def test_hostile_repeated_unfinished_calls_parse_in_linear_steps(unit):
    def steps(size):
        parser = CallParser(unit * (size // len(unit)))
        assert parser.calls() == []
        return parser.steps

    small, large = steps(16_000), steps(64_000)
    assert large <= 4.5 * small  # 4x the text, 4x the work (quadratic would be 16x)
    assert large <= 64 * 64_000  # a bounded amount of work per character


def test_a_call_after_hostile_text_is_still_found():
    text = '[A(x="' * 4000 + "[Real(a='1')]"
    call = parse_first_call(text)
    assert call is not None and call.name == "Real" and call.args == {"a": "1"}
    # A single-quoted unfinished value runs to the first quote that ends an argument, as in
    # API-Bank's own data ('['John']'): the whole text is then one call.
    call = parse_first_call("[A(x='" * 3 + "[Real(a='1')]")
    assert call is not None and call.name == "A" and call.args == {"x": "[A(x='[A(x='[Real(a='1"}
