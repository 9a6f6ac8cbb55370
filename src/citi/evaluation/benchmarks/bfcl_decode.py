"""BFCL's prompting decoder, read with :mod:`ast` only: ``[func(arg=value), ...]`` -> ``[{name:
{arg: value}}]``.

bfcl-eval's decoder (``default_decode_ast_prompting``) parses the text with Python's parser and
reads each value from the tree, except arithmetic, which it hands to Python's evaluator. citi never
evaluates model output; it folds the constant expressions that evaluator would compute from the
tree, with Python's own operators on values that are plain data: numbers (booleans included, as
``True + 1``), text, bytes, lists, tuples and dicts; ``+ - * / // % **``, shifts and ``& | ^``;
``'%s-%d' % ('a', 1)`` and ``'ab' * 3``. Every result is bounded (``MAX_FOLD_ITEMS`` characters or
items, ``MAX_FOLD_BITS`` bits), so ``'a' * 10**9`` or ``1 << 10**9`` does not decode instead of
filling the memory. What ``eval`` would do beyond constants (call ``len(...)``, look a name up)
does not decode either. A ``**{...}`` argument is kept under the key None, which no function
declares: BFCL reports it as an unexpected parameter.

Where bfcl-eval's decoder is wrong, citi reads the value as Python does: ``+v`` is v (BFCL: -v),
``-(-v)`` is v (BFCL: no decode), ``~v`` and ``not v`` are Python's (BFCL: -v), and a sign is
read on real numbers only (BFCL negates ``1j`` too). docs/guides/evaluation-fidelity.md lists them.
"""

from __future__ import annotations

import ast
import operator
import re
from typing import Any

MAX_OUTPUT_CHARS = 20_000  # a guard for the parser against runaway generations
MAX_FOLD_ITEMS = 10_000  # characters or items of a folded text, list or tuple
MAX_FOLD_BITS = 4_096  # bits of a folded integer (about 1,200 digits)

_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert}
_SEQUENCES = (str, bytes, list, tuple)
# A %-format field; its width and precision are bounded before formatting.
_FORMAT_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")


class Undecodable(Exception):
    pass


def _real(x) -> bool:
    return isinstance(x, int | float)  # bool is an int, as in Python's arithmetic


def _scalar_size(x) -> int:
    if isinstance(x, str | bytes):
        return len(x)
    if isinstance(x, int):
        if x.bit_length() > MAX_FOLD_BITS:
            raise Undecodable
        return x.bit_length() // 3 + 1  # about its digits
    return 1


def _estimate(op: type, left, lsize: int, right, rsize: int) -> int:
    """An upper bound of the result's size (characters and items, nested ones counted as often
    as they occur), known before computing it; refuses integers that would grow too large."""
    ints = isinstance(left, int) and isinstance(right, int)
    if op is ast.Mult:
        for seq, size, n in ((left, lsize, right), (right, rsize, left)):
            if isinstance(seq, _SEQUENCES) and isinstance(n, int):
                return size * max(n, 0)
        if ints and left.bit_length() + right.bit_length() > MAX_FOLD_BITS + 1:
            raise Undecodable
    elif op is ast.Pow and ints and right > 0 and abs(left) > 1:
        if right * (abs(left).bit_length() - 1) > MAX_FOLD_BITS:
            raise Undecodable
    elif op is ast.LShift and ints:
        if right > MAX_FOLD_BITS or left.bit_length() + max(right, 0) > MAX_FOLD_BITS:
            raise Undecodable
    elif op is ast.Mod and isinstance(left, str | bytes):
        text = left.decode("latin-1") if isinstance(left, bytes) else left
        widths = 0
        for width, precision in _FORMAT_FIELD.findall(text):
            for n in (width, precision):
                if n == "*":
                    raise Undecodable
                widths += int(n) if n else 0
        return lsize + widths + 10 * rsize  # repr writes a character as at most 10
    return lsize + rsize


def _fold(node: ast.expr) -> tuple[Any, int]:
    """(value, size) of a constant expression."""
    if isinstance(node, ast.Constant):
        if node.value is Ellipsis:
            raise Undecodable
        return node.value, _scalar_size(node.value)
    if isinstance(node, ast.List | ast.Tuple):
        items = [_fold(e) for e in node.elts]
        values = [v for v, _ in items]
        return (values if isinstance(node, ast.List) else tuple(values)), _total(items)
    if isinstance(node, ast.Set):  # BFCL's decoder refuses a set, but eval computes {1} | {2}
        items = [_fold(e) for e in node.elts]
        try:
            return {v for v, _ in items}, _total(items)
        except TypeError:  # an unhashable item
            raise Undecodable from None
    if isinstance(node, ast.Dict):
        keys = [k for k in node.keys if k is not None]
        if len(keys) != len(node.keys):  # {**x}
            raise Undecodable
        items = [_fold(e) for pair in zip(keys, node.values, strict=True) for e in pair]
        try:
            return {items[i][0]: items[i + 1][0] for i in range(0, len(items), 2)}, _total(items)
        except TypeError:  # an unhashable key
            raise Undecodable from None
    if isinstance(node, ast.UnaryOp):
        operand, size = _fold(node.operand)
        if isinstance(node.op, ast.Not):
            return not operand, 1
        return _apply(_UNARY.get(type(node.op)), operand), size
    if isinstance(node, ast.BinOp):
        (left, lsize), (right, rsize) = _fold(node.left), _fold(node.right)
        size = _estimate(type(node.op), left, lsize, right, rsize)
        if size > 10 * MAX_FOLD_ITEMS:
            raise Undecodable
        result = _apply(_OPERATORS.get(type(node.op)), left, right)
        if isinstance(result, str | bytes | int):
            size = _scalar_size(result)
        if size > MAX_FOLD_ITEMS:
            raise Undecodable
        return result, size
    # Names, calls, attributes, subscripts, comparisons...: eval would look up or run something.
    raise Undecodable


def _total(items: list[tuple[Any, int]]) -> int:
    size = 1 + sum(n for _, n in items)
    if size > MAX_FOLD_ITEMS:
        raise Undecodable
    return size


def _apply(op, *args):
    if op is None:
        raise Undecodable
    try:
        return op(*args)
    except (ArithmeticError, ValueError, TypeError, KeyError, IndexError, MemoryError):
        raise Undecodable from None


def constant(node: ast.expr):
    """The value Python computes for a constant expression, or Undecodable: what bfcl-eval's
    ``eval`` returns where the expression needs nothing but constants and operators."""
    return _fold(node)[0]


def _func_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_func_name(node.value)}.{node.attr}"
    raise Undecodable


def value(node: ast.expr):
    """A parameter value as BFCL's decoder reads it, without evaluating anything."""
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.operand, ast.Constant) and not _real(node.operand.value):
            raise Undecodable  # -'a' fails in BFCL; -1j is not read as a number here
        return constant(node)
    if isinstance(node, ast.List):
        return [value(e) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(value(e) for e in node.elts)  # a tuple is not a list (BFCL is strict)
    if isinstance(node, ast.Dict):
        keys = [k for k in node.keys if k is not None]
        if len(keys) != len(node.keys):  # {**x}
            raise Undecodable
        return {value(k): value(v) for k, v in zip(keys, node.values, strict=True)}
    if isinstance(node, ast.Name):  # a bare word, as BFCL reads it
        return node.id
    if isinstance(node, ast.BinOp):
        return constant(node)
    if isinstance(node, ast.Call):  # a nested call: its text, or {name: args} with keywords
        if not node.keywords:
            return ast.unparse(node)
        return {_func_name(node.func): call_args(node)}
    if isinstance(node, ast.Subscript):
        return f"{ast.unparse(node.value)}[{ast.unparse(node.slice)}]"
    # Sets, comparisons, comprehensions, f-strings, attributes, lambdas...: BFCL's decoder
    # rejects them, so the whole output does not decode.
    raise Undecodable


def call_args(node: ast.Call) -> dict:
    # Positional arguments have no name to check, so they are dropped (as BFCL does); a
    # required parameter passed that way is then reported missing. ``**x`` is kept under None.
    return {kw.arg: value(kw.value) for kw in node.keywords}


def decode_calls(text: str) -> list[dict] | None:
    """``[{name: {arg: value}}, ...]`` from a model output, or None when it does not decode.

    The text is read as BFCL's prompting decoder reads it: backticks, newlines and spaces stripped
    from both ends (so a ```` ```python ```` fence does not decode, as in BFCL), brackets added
    where missing, then Python's parser."""
    text = text.strip("`\n ")
    if len(text) > MAX_OUTPUT_CHARS:
        return None
    if not text.startswith("["):
        text = "[" + text
    if not text.endswith("]"):
        text = text + "]"
    try:
        tree = ast.parse(text.strip().strip("'"), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    body = tree.body
    elts: list[ast.expr]
    if isinstance(body, ast.Call):
        elts = [body]
    elif isinstance(body, ast.List | ast.Tuple | ast.Set):
        elts = body.elts
    else:
        return None
    calls = []
    try:
        for node in elts:
            if not isinstance(node, ast.Call):
                return None
            calls.append({_func_name(node.func): call_args(node)})
    except (Undecodable, RecursionError, TypeError):  # TypeError: an unhashable dict key
        return None
    return calls
