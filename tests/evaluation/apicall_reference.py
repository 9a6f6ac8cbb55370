"""The specification of citi's API-Bank call parser, written the direct way: a recursive descent
that rescans freely (quadratic on hostile text, so only for short texts in tests). The linear
parser in citi.evaluation.apicall must return exactly what this one does."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_NUMBER = re.compile(r"-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
# What may follow a complete value: a separator or the end of the enclosing construct.
_TERMINATOR = re.compile(r"\s*(?:[,)\]}:]|$)")
# The end of a top-level argument: the next "key=" or the end of the call.
_ARG_END = re.compile(r"\s*(?:,\s*[A-Za-z_]\w*\s*=|,?\s*\)\s*\])")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


@dataclass
class Call:
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # the matched span


class ParseError(ValueError):
    pass


class _Parser:
    def __init__(self, text: str, pos: int):
        self.text, self.pos = text, pos

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ws(self) -> None:
        while self.peek() and self.peek().isspace():
            self.pos += 1

    def expect(self, ch: str) -> None:
        self.skip_ws()
        if self.peek() != ch:
            raise ParseError(f"expected {ch!r} at {self.pos}")
        self.pos += 1

    def ident(self) -> str:
        self.skip_ws()
        m = _IDENT.match(self.text, self.pos)
        if not m:
            raise ParseError(f"expected a name at {self.pos}")
        self.pos = m.end()
        return m.group()

    def string(self) -> str:
        quote = self.peek()
        self.pos += 1
        out = []
        while True:
            ch = self.peek()
            if not ch:
                raise ParseError("unterminated string")
            self.pos += 1
            if ch == "\\":
                nxt = self.peek()
                if not nxt:
                    raise ParseError("dangling escape")
                self.pos += 1
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
            elif ch == quote:
                return "".join(out)
            else:
                out.append(ch)

    def argument(self) -> Any:
        """A top-level argument value. API-Bank's own data writes quoted values with unescaped
        quotes inside (``attendees='['John']'``), so a quoted argument ends at the first quote
        that is followed by the next ``key=`` or by the end of the call."""
        self.skip_ws()
        quote = self.peek()
        if quote in "[{":
            return self.value()
        if quote not in "'\"":
            # A bare value runs to the next "key=" or the end of the call: "10:00 AM".
            m = _ARG_END.search(self.text, self.pos)
            if not m or m.start() == self.pos:
                raise ParseError(f"expected a value at {self.pos}")
            word = self.text[self.pos : m.start()].strip()
            self.pos = m.start()
            if _NUMBER.fullmatch(word):
                return int(word) if re.fullmatch(r"-?\d+", word) else float(word)
            return {"True": True, "False": False, "None": None}.get(word, word)
        start = self.pos + 1
        i = start
        while True:
            i = self.text.find(quote, i)
            if i == -1:
                raise ParseError("unterminated string")
            if self.text[i - 1] != "\\" and _ARG_END.match(self.text, i + 1):
                break
            i += 1
        self.pos = i + 1
        raw = self.text[start:i]
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), raw)

    def value(self, depth: int = 0) -> Any:
        if depth > 20:
            raise ParseError("nesting too deep")
        self.skip_ws()
        ch = self.peek()
        if ch in "'\"":
            return self.string()
        if ch == "[":
            return self.sequence("[", "]", depth)
        if ch == "{":
            return self.mapping(depth)
        m = _NUMBER.match(self.text, self.pos)
        if m and _TERMINATOR.match(self.text, m.end()):
            self.pos = m.end()
            s = m.group()
            return int(s) if re.fullmatch(r"-?\d+", s) else float(s)
        # A bare word: everything up to the next separator at this level (API-Bank allows it).
        start = self.pos
        while self.peek() and self.peek() not in ",)]}":
            self.pos += 1
        word = self.text[start : self.pos].strip()
        if not word:
            raise ParseError(f"expected a value at {start}")
        return {"True": True, "False": False, "None": None}.get(word, word)

    def sequence(self, open_: str, close: str, depth: int) -> list:
        self.expect(open_)
        items = []
        self.skip_ws()
        if self.peek() == close:
            self.pos += 1
            return items
        while True:
            items.append(self.value(depth + 1))
            self.skip_ws()
            if self.peek() == ",":
                self.pos += 1
                self.skip_ws()
                if self.peek() == close:
                    self.pos += 1
                    return items
                continue
            self.expect(close)
            return items

    def mapping(self, depth: int) -> dict:
        self.expect("{")
        out = {}
        self.skip_ws()
        if self.peek() == "}":
            self.pos += 1
            return out
        while True:
            self.skip_ws()
            key = self.value(depth + 1)
            self.expect(":")
            out[str(key)] = self.value(depth + 1)
            self.skip_ws()
            if self.peek() == ",":
                self.pos += 1
                self.skip_ws()
                if self.peek() == "}":
                    self.pos += 1
                    return out
                continue
            self.expect("}")
            return out

    def call(self) -> Call:
        start = self.pos
        self.expect("[")
        name = self.ident()
        self.expect("(")
        args: dict[str, Any] = {}
        self.skip_ws()
        if self.peek() != ")":
            while True:
                key = self.ident()
                self.expect("=")
                args[key] = self.argument()
                self.skip_ws()
                if self.peek() == ",":
                    self.pos += 1
                    self.skip_ws()
                    if self.peek() == ")":
                        break
                    continue
                break
        self.expect(")")
        self.expect("]")
        return Call(name, args, self.text[start : self.pos])


def parse_calls(text: str, limit: int = 16) -> list[Call]:
    """Every well-formed ``[Name(...)]`` in ``text``, in order (at most ``limit``)."""
    calls = []
    pos = 0
    while len(calls) < limit:
        i = text.find("[", pos)
        if i == -1:
            break
        try:
            parser = _Parser(text, i)
            calls.append(parser.call())
            pos = parser.pos
        except ParseError:
            pos = i + 1
    return calls
