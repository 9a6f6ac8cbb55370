"""bfcl-eval's own decoder and AST checker as a test oracle, and seeded mutations of BFCL's possible
answers to feed both scorers.

bfcl-eval's checker module needs only the standard library, but importing it pulls
``bfcl_eval.constants.model_config`` (every model handler's SDK), and its decoder module pulls the
Java/JavaScript tree-sitter parsers and tenacity. Minimal ``sys.modules`` stubs of those four
modules let both import with no dependencies; nothing else of bfcl-eval is replaced.
"""

from __future__ import annotations

import random
import sys
import types

CATEGORY_OF = {
    "simple": "simple",
    "multiple": "multiple",
    "parallel": "parallel",
    "parallel_multiple": "parallel_multiple",
    "irrelevance": "irrelevance",
}


def load_oracle():
    """(decode, check) from bfcl-eval, or None when bfcl-eval is not installed."""
    try:
        import bfcl_eval  # noqa: F401
    except ImportError:
        return None

    def stub(name: str, **attrs) -> None:
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__dict__.update(attrs)
            sys.modules[name] = module

    class _Config:
        underscore_to_dot = False

    class _Mapping(dict):
        def __missing__(self, key):
            return _Config()

    def unsupported(*args, **kwargs):
        raise NotImplementedError

    def decorator(*args, **kwargs):
        return lambda f: f

    stub("bfcl_eval.constants.model_config", MODEL_CONFIG_MAPPING=_Mapping())
    stub("bfcl_eval.model_handler.parser.java_parser", parse_java_function_call=unsupported)
    stub("bfcl_eval.model_handler.parser.js_parser", parse_javascript_function_call=unsupported)
    names = ("retry", "retry_if_exception_message", "retry_if_exception_type")
    stub("tenacity", wait_random_exponential=decorator, **dict.fromkeys(names, decorator))
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.model_handler.utils import default_decode_ast_prompting
    from bfcl_eval.utils import is_empty_output, is_function_calling_format_output

    def verdict(category: str, output: str, functions: list, answers: list) -> bool:
        """bfcl-eval's validity for one sample (decode, format check, AST checker)."""
        try:
            decoded = default_decode_ast_prompting(output)
        except Exception:
            return category == "irrelevance"
        if category == "irrelevance":
            return is_empty_output(decoded)
        if not is_function_calling_format_output(decoded):
            return False
        result = ast_checker(functions, decoded, answers, Language.PYTHON, category, "citi")
        return bool(result["valid"])

    verdict.decode = default_decode_ast_prompting  # bfcl-eval's own decoder, for direct checks
    return verdict


# -- mutations ---------------------------------------------------------------------------------
def _literal(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


def _first(options):
    kept = [o for o in options if o != ""] if isinstance(options, list) else [options]
    return kept[0] if kept else None


def _resolve(value):
    """A possible-answer value with every nested option list reduced to its first option."""
    if isinstance(value, dict):
        return {k: _first(v) if isinstance(v, list) else v for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


def answer_calls(answer: dict, doc: dict | None, rng: random.Random | None = None) -> list:
    """One call [name, {arg: value}] for a possible answer: a random (or the first) option per
    parameter, optional parameters omitted."""
    name, args = next(iter(answer.items()))
    required = set((doc or {}).get("parameters", {}).get("required", []))
    chosen = {}
    for key, options in args.items():
        kept = [o for o in options if o != ""]
        if not kept or (key not in required and "" in options):
            continue
        value = rng.choice(kept) if rng else kept[0]
        chosen[key] = _resolve(value)
    return [name, chosen]


def render(calls: list, style: str = "plain") -> str:
    body = ", ".join(
        f"{name}({', '.join(f'{k}={_literal(v)}' for k, v in args.items())})"
        for name, args in calls
    )
    text = f"[{body}]"
    if style == "fence":
        return f"```python\n{text}\n```"
    if style == "bare":
        return body
    return text


def _retype(value, rng: random.Random):
    if isinstance(value, bool):
        return rng.choice([int(value), str(value).lower()])
    if isinstance(value, int):
        return rng.choice([float(value), str(value), [value]])
    if isinstance(value, float):
        return rng.choice([str(value), int(value), [value]])
    if isinstance(value, str):
        return rng.choice([len(value), [value], {"value": value}])
    if isinstance(value, list):
        return rng.choice([tuple(value), _literal(value), {"items": value}])
    if isinstance(value, dict):
        return rng.choice([list(value.values()), _literal(value)])
    return "x"


def _restring(value: str, rng: random.Random) -> str:
    return rng.choice(
        [
            value.upper(),
            value.lower(),
            value.replace(" ", "_"),
            value + ".",
            " " + value + " ",
            value.replace(" ", ""),
            value + " extra",
            value[:-1] if len(value) > 1 else value + "x",
            value.replace(",", ", "),
        ]
    )


KINDS = (
    "name",
    "drop_required",
    "unexpected",
    "type",
    "string",
    "optional_empty",
    "optional_value",
    "order",
    "count",
    "fence",
    "tuple",
    "set",
    "arithmetic",
    "nested_string",
    # constant expressions bfcl-eval's decoder hands to eval() and citi folds from the tree
    "string_expression",
    "bool_arithmetic",
    "bitwise",
    "double_star",
)


def mutate(kind: str, calls: list, docs: dict, answers: list, rng: random.Random):
    """A mutated copy of ``calls`` (and how to render it), or None when the kind does not apply."""
    calls = [[name, dict(args)] for name, args in calls]
    style = "plain"
    i = rng.randrange(len(calls))
    name, args = calls[i]
    doc = docs.get(name, {})
    props = doc.get("parameters", {}).get("properties", {})
    if kind == "name":
        calls[i][0] = name + rng.choice(["_v2", "s", ""]) if name[-1] != "s" else name[:-1]
    elif kind == "drop_required":
        if not args:
            return None
        args.pop(rng.choice(sorted(args)))
    elif kind == "unexpected":
        args[rng.choice(["extra", "verbose", next(iter(props), "x")])] = rng.choice([1, "a", True])
    elif kind == "type":
        if not args:
            return None
        key = rng.choice(sorted(args))
        args[key] = _retype(args[key], rng)
    elif kind == "string":
        keys = [k for k, v in args.items() if isinstance(v, str)]
        if not keys:
            return None
        key = rng.choice(keys)
        args[key] = _restring(args[key], rng)
    elif kind in ("optional_empty", "optional_value"):
        answer = next(a for a in answers if next(iter(a)) == name) if answers else {}
        optional = [k for k, o in next(iter(answer.values()), {}).items() if "" in o]
        if not optional:
            return None
        key = rng.choice(optional)
        kept = [o for o in answer[name][key] if o != ""]
        if kind == "optional_empty":
            args[key] = ""
        elif kept:
            args[key] = _resolve(rng.choice(kept))
        else:
            return None
    elif kind == "order":
        if len(calls) < 2:
            return None
        rng.shuffle(calls)
    elif kind == "count":
        if len(calls) > 1 and rng.random() < 0.5:
            calls.pop(i)
        else:
            calls.append(calls[i])
    elif kind == "fence":
        style = rng.choice(["fence", "bare"])
    elif kind == "tuple":
        keys = [k for k, v in args.items() if isinstance(v, list)]
        if not keys:
            return None
        key = rng.choice(keys)
        args[key] = tuple(args[key])
    elif kind == "set":
        keys = [k for k, v in args.items() if isinstance(v, list) and v]
        if not keys:
            return None
        key = rng.choice(keys)
        return _render_set(calls, i, key), "raw"
    elif kind == "arithmetic":
        keys = [
            k for k, v in args.items() if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        if not keys:
            return None
        key = rng.choice(keys)
        return _render_arithmetic(calls, i, key, rng), "raw"
    elif kind == "nested_string":
        keys = [k for k, v in args.items() if isinstance(v, list | dict) and v]
        if not keys:
            return None
        key = rng.choice(keys)
        args[key] = _shout(args[key])
    elif kind in ("string_expression", "bool_arithmetic", "bitwise"):
        keys = [k for k, v in args.items() if _EXPRESSIONS[kind][0](v)]
        if not keys:
            return None
        key = rng.choice(keys)
        expr = rng.choice(_EXPRESSIONS[kind][1])(args[key])
        return _render_replaced(calls, i, key, expr), "raw"
    elif kind == "double_star":  # BFCL keeps it under the key None: an unexpected parameter
        extra = rng.choice(["{}", "{'extra': 1}", f"{{{next(iter(args), 'x')!r}: 1}}"])
        parts = []
        for j, (n, a) in enumerate(calls):
            inner = ", ".join(f"{k}={_literal(v)}" for k, v in a.items())
            if j == i:
                inner += (", " if inner else "") + f"**{extra}"
            parts.append(f"{n}({inner})")
        return "[" + ", ".join(parts) + "]", "raw"
    return calls, style


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# Each family: which values it applies to, and expressions of them; some keep the value (the
# call stays right), some change it (a value error in both scorers, or a type error).
_EXPRESSIONS = {
    "string_expression": (
        lambda v: isinstance(v, str),
        [
            lambda v: f"'%s' % ({v!r},)",
            lambda v: f"{v[: len(v) // 2]!r} + '%s' % {v[len(v) // 2 :]!r}",
            lambda v: f"{v!r} * 1",
            lambda v: f"1 * {v!r}",
            lambda v: f"{v!r} * True",
            lambda v: f"{v!r} * 2",
            lambda v: f"'%s!' % {v!r}",
            lambda v: f"'%d' % {len(v)}",
            lambda v: f"{v!r} * 0",
        ],
    ),
    "bool_arithmetic": (
        lambda v: isinstance(v, int | float),
        [
            lambda v: f"True + {v - 1!r}" if not isinstance(v, bool) else f"{v!r} + 0",
            lambda v: f"{v!r} * True",
            lambda v: f"{v!r} * False",
            lambda v: f"False + {v!r}",
            lambda v: f"{v!r} & True" if isinstance(v, bool) else f"{v!r} - True",
            lambda v: f"{v!r} | False" if isinstance(v, bool) else f"True * {v!r}",
            lambda v: f"{v!r} ^ True" if isinstance(v, bool) else f"{v!r} + True",
        ],
    ),
    "bitwise": (
        lambda v: _is_int(v) and v >= 0,
        [
            lambda v: f"({v} << 2) >> 2",
            lambda v: f"{v} | 0",
            lambda v: f"{v} & -1",
            lambda v: f"{v} ^ 0",
            lambda v: f"{v} << 1",
            lambda v: f"{v} >> 1",
            lambda v: f"{v} ^ 1",
            lambda v: f"{v} & 0",
        ],
    ),
}


def _render_replaced(calls, i, key, expr: str) -> str:
    """The rendered calls with one argument's literal replaced by an expression."""
    literal = _literal(calls[i][1][key])
    text = render(calls)
    return text.replace(f"{key}={literal}", f"{key}={expr}", 1)


def _shout(value):
    """Upper-case every string inside a list or dict, at every depth."""
    if isinstance(value, str):
        return value.upper() + " "
    if isinstance(value, list | tuple):
        return [_shout(v) for v in value]
    if isinstance(value, dict):
        return {k: _shout(v) for k, v in value.items()}
    return value


def _render_set(calls, i, key) -> str:
    text = render(calls)
    literal = _literal(calls[i][1][key])
    return text.replace(f"{key}={literal}", f"{key}={{{literal[1:-1]}}}", 1)


def _render_arithmetic(calls, i, key, rng) -> str:
    value = calls[i][1][key]
    text = render(calls)
    a = rng.choice([1, 2, 3])
    expr = f"{value - a!r} + {a}" if isinstance(value, int) else f"{value!r} * 1"
    return text.replace(f"{key}={value!r}", f"{key}={expr}", 1)
