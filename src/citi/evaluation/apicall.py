"""A parser for API-Bank style calls ``[Name(key='value', n=3, items=['a', 'b'], flag=yes)]``.

Model output is untrusted, so it is tokenised and parsed here, never evaluated: quoted strings
(single or double, with backslash escapes), numbers, lists and dicts of values, ``True``/``False``/
``None`` and bare words. The first well-formed call in the text wins; malformed text yields None.
A trailing comma before ``)`` (or ``]``/``}``) is allowed, as API-Bank's own regex extractor
reads ``[X(a='1',)]`` as a call.

Linear time on hostile text. A call may start at every ``[``, and a failed attempt is retried at
the next one, so a naive parser rescans the same tail once per attempt (``[A(x='`` repeated 8,000
times took seconds). Here every scan that could run far is a binary search in position tables
built once per text (the next separator, the next closing quote), every rule result is memoised by
its position, lists and argument lists are parsed as memoised chains (an attempt that reaches a
position another attempt already parsed reuses the verdict), and values are kept as spans and
only decoded for a call that parses. ``CallParser.steps`` counts the work done, so tests can check
the growth without timing anything.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_NUMBER = re.compile(r"-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_INT = re.compile(r"-?\d+")
_WS = re.compile(r"\s*")
# What may follow a complete value: a separator or the end of the enclosing construct.
_TERMINATOR = re.compile(r"\s*(?:[,)\]}:]|$)")
# The end of a top-level argument (after optional spaces): the next "key=", a trailing comma
# before the end of the call, or the end of the call. Each starts at a ',' or a ')'.
_ARG_END_COMMA = re.compile(r",\s*(?:[A-Za-z_]\w*\s*=|\)\s*\])")
_ARG_END_PAREN = re.compile(r"\)\s*\]")
_STOPS = re.compile(r"[,)\]}]")
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}
_WORDS = {"True": True, "False": False, "None": None}
MAX_DEPTH = 20


@dataclass
class Call:
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # the matched span
    # Where each top-level argument value lies in the parsed text, (start, end) character
    # offsets without the quotes of a string: what the argument-token NLL scores.
    value_spans: list[tuple[int, int]] = field(default_factory=list)


class ParseError(ValueError):
    pass


class _Index:
    """Position tables of one text, built in one pass each (linear)."""

    def __init__(self, text: str):
        self.stops = [m.start() for m in _STOPS.finditer(text)]
        cores = {m.start() for m in _ARG_END_COMMA.finditer(text)}
        cores |= {m.start() for m in _ARG_END_PAREN.finditer(text)}
        self.cores = sorted(cores)
        # Where the spaces in front of each argument end begin (the runs are disjoint).
        self.core_ws_start = []
        for c in self.cores:
            s = c
            while s > 0 and text[s - 1].isspace():
                s -= 1
            self.core_ws_start.append(s)
        self.string_close: dict[str, list[int]] = {"'": [], '"': []}
        self.arg_close: dict[str, list[int]] = {"'": [], '"': []}
        for m in re.finditer(r"['\"]", text):
            j, q = m.start(), m.group()
            b = j
            while b > 0 and text[b - 1] == "\\":
                b -= 1
            if (j - b) % 2 == 0:  # not escaped by the backslashes in front of it
                self.string_close[q].append(j)
            if (j == 0 or text[j - 1] != "\\") and self.arg_end_at(j + 1):
                self.arg_close[q].append(j)

    def arg_end_at(self, pos: int) -> bool:
        i = bisect_left(self.cores, pos)
        return i < len(self.cores) and self.core_ws_start[i] <= pos

    def arg_end_from(self, pos: int) -> int | None:
        i = bisect_left(self.cores, pos)
        return max(pos, self.core_ws_start[i]) if i < len(self.cores) else None

    @staticmethod
    def first_at_or_after(positions: list[int], pos: int) -> int | None:
        i = bisect_left(positions, pos)
        return positions[i] if i < len(positions) else None


class CallParser:
    """Every well-formed call in one text; ``steps`` counts rule evaluations, table look-ups and
    characters matched (the parser's work, for complexity tests)."""

    def __init__(self, text: str):
        self.text = text
        self.steps = len(text)  # building the index reads the text a few times
        self._index: _Index | None = None
        self._memo: dict[tuple, Any] = {}

    @property
    def index(self) -> _Index:
        if self._index is None:
            self._index = _Index(self.text)
            self.steps += 4 * len(self.text)
        return self._index

    # -- primitives ----------------------------------------------------------------------------
    def _at(self, pos: int) -> str:
        return self.text[pos] if pos < len(self.text) else ""

    def _ws(self, pos: int) -> int:
        match = _WS.match(self.text, pos)  # ``\s*`` always matches, possibly empty
        end = match.end() if match else pos
        self.steps += end - pos + 1
        return end

    def _expect(self, pos: int, ch: str) -> int:
        pos = self._ws(pos)
        if self._at(pos) != ch:
            raise ParseError(f"expected {ch!r} at {pos}")
        return pos + 1

    def _ident(self, pos: int) -> tuple[str, int]:
        pos = self._ws(pos)
        m = _IDENT.match(self.text, pos)
        if not m:
            raise ParseError(f"expected a name at {pos}")
        self.steps += m.end() - pos
        return m.group(), m.end()

    def _memoised(self, key: tuple, compute):
        if key in self._memo:
            found = self._memo[key]
            if found is None:
                raise ParseError(f"{key[0]} at {key[1]}")
            return found
        self.steps += 1
        try:
            found = compute()
        except ParseError:
            self._memo[key] = None
            raise
        self._memo[key] = found
        return found

    # -- values (nodes are spans, decoded only for a call that parses) ---------------------------
    def _value(self, pos: int, depth: int) -> tuple[tuple, int]:
        return self._memoised(("value", pos, depth), lambda: self._value_uncached(pos, depth))

    def _value_uncached(self, pos: int, depth: int) -> tuple[tuple, int]:
        if depth > MAX_DEPTH:
            raise ParseError("nesting too deep")
        pos = self._ws(pos)
        ch = self._at(pos)
        if ch in ("'", '"'):
            close = self.index.first_at_or_after(self.index.string_close[ch], pos + 1)
            self.steps += 1
            if close is None:
                raise ParseError("unterminated string")
            return ("str", pos + 1, close), close + 1
        if ch in ("[", "{"):
            return self._chain(pos + 1, "]" if ch == "[" else "}", depth)
        m = _NUMBER.match(self.text, pos)
        if m:
            t = _TERMINATOR.match(self.text, m.end())
            self.steps += m.end() - pos + (t.end() - m.end() if t else 0)
            if t:
                return ("num", pos, m.end()), m.end()
        # A bare word: everything up to the next separator at this level (API-Bank allows it).
        stop = self.index.first_at_or_after(self.index.stops, pos)
        stop = len(self.text) if stop is None else stop
        self.steps += 1
        if stop == pos:
            raise ParseError(f"expected a value at {pos}")
        return ("word", pos, stop), stop

    def _argument(self, pos: int) -> tuple[tuple, int]:
        """A top-level argument value. API-Bank's own data writes quoted values with unescaped
        quotes inside (``attendees='['John']'``), so a quoted argument ends at the first quote
        that is followed by the next ``key=`` or by the end of the call."""
        pos = self._ws(pos)
        ch = self._at(pos)
        if ch in ("[", "{"):
            return self._value(pos, 0)
        self.steps += 1
        if ch not in ("'", '"'):
            # A bare value runs to the next "key=" or the end of the call: "10:00 AM".
            end = self.index.arg_end_from(pos)
            if end is None or end == pos:
                raise ParseError(f"expected a value at {pos}")
            return ("arg", pos, end), end
        close = self.index.first_at_or_after(self.index.arg_close[ch], pos + 1)
        if close is None:
            raise ParseError("unterminated string")
        return ("str", pos + 1, close), close + 1

    def _chain(self, pos: int, close: str, depth: int) -> tuple[tuple, int]:
        """The items of a list (``close`` ']'), the pairs of a dict ('}') or the arguments of a
        call (')'), from just after the opening bracket: a chain of memoised links, so that a
        position parsed once is never parsed again, whichever attempt reaches it."""
        kind = "list" if close == "]" else "dict" if close == "}" else "args"
        start = self._ws(pos)
        if self._at(start) == close and kind != "args":
            return (kind, None), start + 1
        links: list[tuple[tuple, tuple, tuple | None]] = []  # (key, node, next key)
        key = (kind, start, depth)
        end: int | None = None
        try:
            while key not in self._memo:
                self.steps += 1
                node, after = self._link(key[1], kind, depth)
                after = self._ws(after)
                ch = self._at(after)
                if ch == ",":
                    after = self._ws(after + 1)
                    if self._at(after) != close:  # a trailing comma ends it too
                        nxt = (kind, after, depth)
                        links.append((key, node, nxt))
                        key = nxt
                        continue
                if self._at(after) != close:
                    raise ParseError(f"expected {close!r} at {after}")
                end = after + 1
                if kind == "args":
                    end = self._expect(end, "]")
                links.append((key, node, None))
                break
            else:
                found = self._memo[key]
                if found is None:
                    raise ParseError(f"{kind} at {key[1]}")
                end = found[2]
        except ParseError:
            for k, _, _ in links:
                self._memo[k] = None
            self._memo[key] = None
            raise
        for k, node, following in links:
            self._memo[k] = (node, following, end)
        return (kind, (kind, start, depth)), end

    def _link(self, pos: int, kind: str, depth: int) -> tuple[Any, int]:
        if kind == "list":
            return self._value(pos, depth + 1)
        if kind == "dict":
            k, after = self._value(pos, depth + 1)
            v, after = self._value(self._expect(after, ":"), depth + 1)
            return (k, v), after
        name, after = self._ident(pos)
        value, after = self._argument(self._expect(after, "="))
        return (name, value), after

    # -- decoding ------------------------------------------------------------------------------
    def _links(self, first: tuple | None):
        key = first
        while key is not None:
            node, key, _ = self._memo[key]
            yield node

    def _decode(self, node: tuple) -> Any:
        kind = node[0]
        if kind in ("list", "dict", "args"):
            if node[1] is None:
                return [] if kind == "list" else {}
            links = self._links(node[1])
            if kind == "list":
                return [self._decode(n) for n in links]
            if kind == "dict":
                return {str(self._decode(k)): self._decode(v) for k, v in links}
            return {name: self._decode(v) for name, v in links}
        raw = self.text[node[1] : node[2]]
        if kind == "str":
            return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), raw)
        word = raw.strip()
        if kind == "num" or (kind == "arg" and _NUMBER.fullmatch(word)):
            return int(word) if _INT.fullmatch(word) else float(word)
        return _WORDS.get(word, word)

    # -- calls ---------------------------------------------------------------------------------
    def call_at(self, pos: int) -> tuple[Call, int]:
        """The call starting at the '[' at ``pos`` and the position after it."""
        name, after = self._ident(pos + 1)
        after = self._ws(self._expect(after, "("))
        if self._at(after) == ")":
            end, args, spans = self._expect(after + 1, "]"), {}, []
        else:
            node, end = self._chain(after, ")", 0)
            args = self._decode(node)
            spans = [self._span(value) for _, value in self._links(node[1])]
        return Call(name, args, self.text[pos:end], [s for s in spans if s]), end

    def _span(self, node: tuple) -> tuple[int, int] | None:
        """The characters of a parsed argument value: a string's contents, a bare word or
        number without trailing spaces, a list's or dict's inside; None when empty."""
        if node[0] in ("list", "dict"):
            if node[1] is None:
                return None
            start, end = node[1][1], self._memo[node[1]][2] - 1  # inside the brackets
        else:
            start, end = node[1], node[2]
        end = len(self.text[:end].rstrip()) if node[0] != "str" else end
        return (start, end) if end > start else None

    def calls(self, limit: int = 16) -> list[Call]:
        found: list[Call] = []
        pos = 0
        while len(found) < limit:
            i = self.text.find("[", pos)
            if i == -1:
                break
            self.steps += i - pos + 1
            try:
                call, pos = self.call_at(i)
                found.append(call)
            except ParseError:
                pos = i + 1
        return found


def parse_calls(text: str, limit: int = 16) -> list[Call]:
    """Every well-formed ``[Name(...)]`` in ``text``, in order (at most ``limit``)."""
    return CallParser(text).calls(limit)


def parse_first_call(text: str) -> Call | None:
    calls = parse_calls(text, limit=1)
    return calls[0] if calls else None
