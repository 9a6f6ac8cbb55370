import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citi.evaluation.toolcalls.check import CALL_ERRORS, CORRECT, check_calls, schema_error

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "book_flight",
            "description": "Book a flight",
            "parameters": {
                "type": "object",
                "properties": {
                    "origin": {"type": "string"},
                    "destination": {"type": "string"},
                    "passengers": {"type": "integer"},
                    "budget": {"type": "number"},
                    "cabin": {"type": "string", "enum": ["economy", "business"]},
                    "refundable": {"type": "boolean", "default": False},
                    "seat": {"type": ["string", "null"]},
                    "traveller": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                        "required": ["name"],
                        "additionalProperties": False,
                    },
                    "stops": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["origin", "destination"],
            },
        },
    },
    {"type": "function", "function": {"name": "cancel", "parameters": {"type": "object"}}},
]
GOLD = {
    "name": "book_flight",
    "arguments": {
        "origin": "New York",
        "destination": "Paris",
        "passengers": 2,
        "budget": 900.5,
        "cabin": "economy",
        "traveller": {"name": "Ada", "age": 36},
        "stops": ["Dublin", "London"],
    },
}


def mutate(**changes):
    call = copy.deepcopy(GOLD)
    for key, value in changes.items():
        if value is ...:
            del call["arguments"][key]
        else:
            call["arguments"][key] = value
    return call


def test_the_gold_call_is_correct():
    assert check_calls([copy.deepcopy(GOLD)], [GOLD], TOOLS) == CORRECT


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ({**GOLD, "name": "book_hotel"}, "wrong_func_name"),
        (mutate(origin=...), "missing_required"),
        (mutate(passengers=...), "missing_optional"),
        (mutate(meal="vegan"), "unexpected_param"),  # not declared
        (mutate(refundable=True), "unexpected_param"),  # declared, not in the reference
        (mutate(passengers="2"), "type_error"),
        (mutate(passengers=2.0), "type_error"),  # integer means int (BFCL)
        (mutate(passengers=True), "type_error"),
        (mutate(budget="900.5"), "type_error"),
        (mutate(stops="Dublin"), "type_error"),
        (mutate(stops=["Dublin", 3]), "type_error"),  # items checked
        (mutate(traveller={"name": "Ada", "age": "36"}), "type_error"),  # nested
        (mutate(traveller={"age": 36}), "missing_required"),  # nested required
        (mutate(traveller={"name": "Ada", "age": 36, "x": 1}), "unexpected_param"),
        (mutate(cabin="first"), "enum_violation"),
        (mutate(cabin="Economy"), "enum_violation"),  # enums are exact
        (mutate(destination="Rome"), "value_error"),
        (mutate(passengers=3), "value_error"),
        (mutate(budget=900.0), "value_error"),
        (mutate(stops=["London", "Dublin"]), "value_error"),  # order matters in a list
        (mutate(traveller={"name": "Bob", "age": 36}), "value_error"),
    ],
)
def test_a_mutated_call_fails_with_its_error_class(call, error):
    assert error in CALL_ERRORS
    assert check_calls([call], [GOLD], TOOLS) == error


@pytest.mark.parametrize(
    "call",
    [
        mutate(origin="new york"),  # BFCL's string normalisation
        mutate(destination="PARIS."),
        mutate(budget=900.5),
        mutate(refundable=False),  # the schema's default, said explicitly
        mutate(traveller={"name": "ada", "age": 36}),  # normalised one level into a dict
        mutate(stops=["dublin", "london"]),
    ],
)
def test_equivalent_calls_are_correct(call):
    assert check_calls([call], [GOLD], TOOLS) == CORRECT


def test_an_integer_is_a_number():
    gold = mutate(budget=900)
    assert check_calls([mutate(budget=900.0)], [gold], TOOLS) == CORRECT
    assert check_calls([mutate(budget=900)], [mutate(budget=900.0)], TOOLS) == CORRECT


def test_an_integer_is_a_number_in_a_list_too():
    # BFCL promotes ints to floats only at the top level; JSON Schema's number takes both.
    tools = [
        {
            "type": "function",
            "function": {
                "name": "area",
                "parameters": {
                    "type": "object",
                    "properties": {"sides": {"type": "array", "items": {"type": "number"}}},
                },
            },
        }
    ]

    def call(sides):
        return {"name": "area", "arguments": {"sides": sides}}

    assert check_calls([call([5, 3.5])], [call([5.0, 3.5])], tools) == CORRECT
    assert check_calls([call([5.0, 3.5])], [call([5, 3.5])], tools) == CORRECT
    assert check_calls([call([5, 3])], [call([5.0, 3.5])], tools) == "value_error"
    assert check_calls([call([5, "3.5"])], [call([5.0, 3.5])], tools) == "type_error"
    assert check_calls([call([5, True])], [call([5.0, 1.0])], tools) == "type_error"


def test_a_reference_default_may_be_omitted():
    gold = mutate(refundable=False)
    assert check_calls([copy.deepcopy(GOLD)], [gold], TOOLS) == CORRECT
    assert check_calls([mutate(refundable=True)], [gold], TOOLS) == "value_error"


def test_a_list_of_types_and_null():
    gold = mutate(seat=None)
    assert check_calls([mutate(seat=None)], [gold], TOOLS) == CORRECT
    assert check_calls([mutate(seat="12A")], [gold], TOOLS) == "value_error"
    assert check_calls([mutate(seat=12)], [gold], TOOLS) == "type_error"


def test_a_reference_that_breaks_its_schema_still_matches_itself():
    gold = mutate(passengers="two", origin=...)  # a wrong type and a missing required key
    assert check_calls([copy.deepcopy(gold)], [gold], TOOLS) == CORRECT


def test_parallel_calls_match_in_any_order_and_count():
    other = {"name": "cancel", "arguments": {"id": 7}}
    assert check_calls([other, copy.deepcopy(GOLD)], [GOLD, other], TOOLS) == CORRECT
    assert check_calls([copy.deepcopy(GOLD)], [GOLD, other], TOOLS) == "wrong_count"
    assert check_calls([other, mutate(cabin="first")], [GOLD, other], TOOLS) == "enum_violation"


def test_a_function_the_tools_do_not_list_is_checked_against_the_reference():
    gold = {"name": "ping", "arguments": {"host": "a.example"}}
    assert (
        check_calls([{"name": "ping", "arguments": {"host": "A.example"}}], [gold], []) == CORRECT
    )
    assert check_calls([{"name": "ping", "arguments": {}}], [gold], None) == "missing_required"
    bad = {"name": "ping", "arguments": {"host": "a.example", "n": 1}}
    assert check_calls([bad], [gold], None) == "unexpected_param"


def test_schema_error_reads_bfcl_type_names_and_ignores_unknown_ones():
    assert schema_error([1], {"type": "tuple"}) is None
    assert schema_error({}, {"type": "dict"}) is None
    assert schema_error(1, {"type": "float"}) is None
    assert schema_error("x", {"type": "whatever"}) is None
    assert schema_error("x", {"enum": ["x"]}) is None
    assert schema_error(1, {"enum": [True]}) == "enum_violation"  # 1 is not true in JSON


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
_args = st.dictionaries(st.sampled_from(sorted(GOLD["arguments"]) + ["seat", "x"]), _json)


@settings(max_examples=300, deadline=None)
@given(_args, _args)
def test_any_reference_matches_itself_and_checking_never_raises(gold_args, args):
    gold = {"name": "book_flight", "arguments": gold_args}
    assert check_calls([copy.deepcopy(gold)], [gold], TOOLS) == CORRECT
    verdict = check_calls([{"name": "book_flight", "arguments": args}], [gold], TOOLS)
    assert verdict == CORRECT or verdict in CALL_ERRORS
