"""AST checking of parsed tool calls against a reference call and the tool's JSON Schema.

BFCL's rules (:mod:`citi.evaluation.benchmarks.bfcl`: its checker is reused for the value
rules, string normalisation included), extended to JSON Schema where a user's tools declare it:

* the number of calls must match; parallel calls match in any order; the name must match;
* every ``required`` parameter must be present; a parameter the schema does not declare is
  ``unexpected_param``, and so is an optional one the reference omits, unless it equals the
  schema's ``default``; an optional parameter the reference gives may be omitted only when the
  reference value is the ``default`` (else ``missing_optional``, BFCL's name);
* types are JSON Schema's: ``string``, ``integer`` (an int: ``1.0`` is not one, as in BFCL),
  ``number`` (an int or a float, in a list too), ``boolean``, ``array`` (each item against
  ``items``), ``object`` (its ``properties``, their ``required``, ``additionalProperties:
  false``), ``null``, a list of types; BFCL's ``float``/``dict``/``tuple`` names are read
  too. ``enum`` is exact (``enum_violation``). A value equal to the reference is never a
  schema error, so a reference that breaks its own schema still scores 1.0;
* values are then compared with BFCL's rules: strings normalised (case, spaces, ``,./-_*^``),
  lists item by item, dicts one level deep.

A call to a function the tools do not list is checked against the reference alone (its keys
required, no types).
"""

from __future__ import annotations

import json
from typing import Any

from citi.evaluation.benchmarks import bfcl

CORRECT = bfcl.CORRECT
CALL_ERRORS = (
    "wrong_count",
    "wrong_func_name",
    "missing_required",
    "unexpected_param",
    "missing_optional",
    "type_error",
    "enum_violation",
    "value_error",
)

# JSON Schema's type names (and BFCL's) as BFCL's checker names them; others: no type rule there.
_BFCL_TYPE = {
    "string": "string",
    "integer": "integer",
    "number": "float",
    "float": "float",
    "boolean": "boolean",
    "array": "array",
    "tuple": "tuple",
    "object": "dict",
    "dict": "dict",
}
_UNCHECKED = "unchecked"  # a type name BFCL's table lacks: values compared, types not


def is_type(value, name: str) -> bool:
    """Whether ``value`` (decoded JSON) has JSON Schema type ``name``; unknown names accept."""
    if name == "string":
        return isinstance(value, str)
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name in ("number", "float"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if name == "boolean":
        return isinstance(value, bool)
    if name in ("array", "tuple"):
        return isinstance(value, list)
    if name in ("object", "dict"):
        return isinstance(value, dict)
    if name == "null":
        return value is None
    return True


def _types(prop: dict) -> list[str]:
    declared = prop.get("type") if isinstance(prop, dict) else None
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [t for t in declared if isinstance(t, str)]
    return []


def _same(a, b) -> bool:
    """JSON equality: ``True`` is not ``1`` and ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _identical(a, b) -> bool:
    """The same JSON text: equal values of the same types (``2.0`` is not ``2`` here)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def schema_error(value, prop: Any) -> str | None:
    """The first way ``value`` breaks its property schema ``prop`` (an error class), or None
    (also when ``prop`` is not a mapping: nothing to check against)."""
    if not isinstance(prop, dict):
        return None
    types = _types(prop)
    if types and not any(is_type(value, t) for t in types):
        return "type_error"
    enum = prop.get("enum")
    if isinstance(enum, list) and not any(_same(value, e) for e in enum):
        return "enum_violation"
    if isinstance(value, dict) and isinstance(prop.get("properties"), dict):
        return _object_error(value, prop)
    if isinstance(value, list) and isinstance(prop.get("items"), dict):
        return next((e for e in (schema_error(v, prop["items"]) for v in value) if e), None)
    return None


def _object_error(value: dict, schema: dict) -> str | None:
    props = schema.get("properties") or {}
    for key in schema.get("required") or []:
        if key not in value:
            return "missing_required"
    if schema.get("additionalProperties") is False and any(k not in props for k in value):
        return "unexpected_param"
    return next((e for e in (schema_error(v, props.get(k)) for k, v in value.items()) if e), None)


def _json_type(value) -> str | None:
    for name in ("boolean", "integer", "number", "string", "array", "object"):
        if is_type(value, name):
            return name
    return None


def _bfcl_property(prop: dict, value, reference) -> dict:
    """A JSON Schema property in BFCL's type names (for its value rules): with a list of types,
    the one ``value`` has; with none declared, the reference value's own type."""
    types = _types(prop) or [t for t in [_json_type(reference)] if t]
    chosen = next((t for t in types if is_type(value, t)), types[0] if types else None)
    out: dict[str, Any] = {"type": _BFCL_TYPE.get(chosen or "", _UNCHECKED)}
    items = prop.get("items")
    if out["type"] == "array" and isinstance(items, dict):
        first = _types(items)
        out["items"] = {"type": _BFCL_TYPE.get(first[0], _UNCHECKED) if first else _UNCHECKED}
    return out


def _numbers_as_floats(value, prop: dict):
    """A list of JSON Schema ``number`` items with its ints as floats. BFCL promotes an int to a
    float only at the top level and type-checks list items exactly, so ``[5, 3.5]`` against a
    reference ``[5.0, 3.5]`` would be a ``type_error``; in JSON Schema an int is a number."""
    nested = prop.get("items", {}).get("type")
    if prop["type"] == "array" and nested == "float" and isinstance(value, list):
        return [float(v) if type(v) is int else v for v in value]
    return value


def _bfcl_option(value, prop: dict):
    """A reference value as one of BFCL's possible answers: a dict's values (and those of a list
    of dicts) become one-option lists, as BFCL's answer files write nested parameters."""
    value = _numbers_as_floats(value, prop)
    if prop["type"] == "dict" and isinstance(value, dict):
        return {k: [v] for k, v in value.items()}
    nested = prop.get("items", {}).get("type")
    if prop["type"] == "array" and nested == "dict" and isinstance(value, list):
        if all(isinstance(v, dict) for v in value):
            return [{k: [x] for k, x in v.items()} for v in value]
    return value


def parameters_of(tool: dict | None) -> dict | None:
    """The parameters schema of a canonical tool (``{"type": "function", "function": {...}}``)
    or a bare ``{name, parameters}``; None when it declares none."""
    if not isinstance(tool, dict):
        return None
    fn = tool.get("function", tool)
    params = fn.get("parameters") if isinstance(fn, dict) else None
    return params if isinstance(params, dict) else None


def check_call(call: dict, gold: dict, params: dict | None) -> str:
    """CORRECT or the error class of one call ``{"name", "arguments"}`` against the reference call
    ``gold`` and the function's parameters schema (None: the reference alone decides)."""
    if call["name"] != gold["name"]:
        return "wrong_func_name"
    args, want = dict(call["arguments"]), gold["arguments"]
    if params is None:
        params = {"properties": {k: {} for k in want}, "required": list(want)}
    declared = params.get("properties")
    if not isinstance(declared, dict):
        declared = {}
    props: dict[str, dict] = {k: {} for k in want}
    props.update({k: v if isinstance(v, dict) else {} for k, v in declared.items()})
    # A required parameter the reference itself omits is not held against the call.
    required = [k for k in params.get("required") or [] if isinstance(k, str) and k in want]
    for key in required:
        if key not in args:
            return "missing_required"
    for key in args:
        if key not in props:
            return "unexpected_param"
    for key, value in args.items():
        if key in want and _identical(value, want[key]):
            continue  # what the reference itself says is never a schema error
        error = schema_error(value, props[key])
        if error:
            return error
    for key in [k for k in args if k not in want]:  # an explicit default the reference omits
        if "default" in props[key] and _same(args[key], props[key]["default"]):
            del args[key]
    properties = {
        # A value equal to the reference's passes whatever its type (BFCL would type-check it).
        k: {"type": _UNCHECKED}
        if k in args and k in want and _identical(args[k], want[k])
        else _bfcl_property(props[k], args.get(k, want.get(k)), want.get(k))
        for k in props
    }
    args = {k: _numbers_as_floats(v, properties[k]) for k, v in args.items()}
    answer = {}
    for key, value in want.items():
        options = [_bfcl_option(value, properties[key])]
        omittable = key not in required and _same(value, props[key].get("default", ...))
        answer[key] = options + [""] if omittable else options
    doc = {"parameters": {"properties": properties, "required": required}}
    return bfcl.check_call({call["name"]: args}, doc, {gold["name"]: answer})


def check_calls(calls: list[dict], golds: list[dict], tools: list[dict] | None) -> str:
    """CORRECT or the error class of a turn's calls against its reference calls: the counts
    must match and every reference call is matched by a distinct call, in any order (BFCL's
    parallel rule; for one call, the plain check)."""
    if len(calls) != len(golds):
        return "wrong_count"
    schemas = {}
    for tool in tools or []:
        fn = tool.get("function", tool) if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            schemas[fn["name"]] = parameters_of(tool)
    return bfcl.match_in_any_order(
        calls, golds, lambda call, gold: check_call(call, gold, schemas.get(gold["name"]))
    )
