import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    "[A(x=1, ",
    "[ A ( x = '  ,   ",
    "[A(x=a" + " " * 20,
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


FRAGMENTS = list("[]{}(),=:'\" \\\n") + ["A", "x", "1", "-", ".", "True", "[A(", "x=", "'a'", ")]"]
_noise = st.lists(st.sampled_from(FRAGMENTS), max_size=6).map("".join)
_word = st.text("abAB1 -.:", min_size=1, max_size=5)
_scalar = st.one_of(
    _word.map(lambda w: repr(w)),  # quoted
    st.text("ab'\"\\[], ", max_size=5).map(lambda w: "'" + w + "'"),  # unescaped quotes inside
    st.integers(-99, 99).map(str),
    _word,  # bare
)
_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.tuples(st.lists(inner, max_size=3), st.booleans()).map(
            lambda t: "[" + ", ".join(t[0]) + ("," if t[1] and t[0] else "") + "]"
        ),
        st.lists(st.tuples(_scalar, inner), max_size=2).map(
            lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
        ),
    ),
    max_leaves=6,
)
_call = st.tuples(
    st.sampled_from(["A", "Get_x", "b.c"]),
    st.lists(st.tuples(st.sampled_from(["x", "y", "key"]), _value), max_size=3),
    st.sampled_from(["", ",", " , "]),
).map(
    lambda t: f"[{t[0]}(" + ", ".join(f"{k}={v}" for k, v in t[1]) + (t[2] if t[1] else "") + ")]"
)
_text = st.lists(st.one_of(_call, _noise), max_size=4).map("".join)


@settings(max_examples=600, deadline=None)
@given(_text, st.data())
def test_the_linear_parser_returns_what_the_direct_one_does(text, data):
    """tests/evaluation/apicall_reference.py is the parser written the direct (quadratic) way;
    on short texts, well-formed calls among noise and with characters cut out, both must find
    the same calls with the same arguments."""
    from tests.evaluation.apicall_reference import parse_calls as reference

    if text:  # cut a random slice out: unfinished calls
        i = data.draw(st.integers(0, len(text)))
        j = data.draw(st.integers(i, min(len(text), i + 3)))
        text = text[:i] + text[j:]

    def seen(calls):
        return [(c.name, c.args, c.text) for c in calls]

    assert seen(parse_calls(text)) == seen(reference(text))
