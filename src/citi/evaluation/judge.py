"""A judge (or API simulator): any OpenAI-compatible chat-completions endpoint.

``--judge-url http://host:8000/v1 --judge-model NAME`` points at it (vLLM, llama.cpp's server,
TGI, or the OpenAI API itself); the key, if one is needed, is read from ``CITI_JUDGE_API_KEY``
(or ``OPENAI_API_KEY``) so it never lands in a saved config. Replies are cached on disk by request,
so a resumed evaluation does not pay for the same judgement twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from citi.errors import CitiError


class JudgeError(CitiError):
    pass


@dataclass
class Judge:
    url: str
    model: str
    temperature: float = 0.0
    max_tokens: int = 1024
    timeout: float = 120.0
    retries: int = 3
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise JudgeError(f"--judge-url: expected an http(s) URL, got {self.url!r}")
        if not self.model:
            raise JudgeError("--judge-model: a model name is needed with --judge-url")

    @property
    def endpoint(self) -> str:
        url = self.url.rstrip("/")
        return url if url.endswith("/chat/completions") else f"{url}/chat/completions"

    def chat(self, messages: list[dict], temperature: float | None = None) -> str:
        """The reply text to ``messages``; raises JudgeError with the endpoint's own message."""
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature if temperature is None else temperature,
            "max_tokens": self.max_tokens,
        }
        payload = json.dumps(body, sort_keys=True).encode()
        cache = None
        if self.cache_dir is not None:
            cache = self.cache_dir / f"{hashlib.sha1(payload).hexdigest()}.json"
            if cache.is_file():
                return cached_reply(cache)
        reply = self._post(payload)
        if cache is not None:
            from citi.io import write_json_atomic

            write_json_atomic(cache, {"request": body, "reply": reply})
        return reply

    def _post(self, payload: bytes) -> str:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get("CITI_JUDGE_API_KEY") or os.environ.get("OPENAI_API_KEY")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        last = ""
        for attempt in range(self.retries):
            request = urllib.request.Request(self.endpoint, payload, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    data = json.loads(resp.read().decode())
                return data["choices"][0]["message"]["content"] or ""
            except urllib.error.HTTPError as err:
                last = f"HTTP {err.code}: {err.read().decode(errors='replace')[:200]}"
                if err.code < 500 and err.code != 429:
                    break  # a client error will not go away by retrying
            except (urllib.error.URLError, TimeoutError, OSError) as err:
                last = str(getattr(err, "reason", err))
            except (KeyError, IndexError, TypeError, json.JSONDecodeError):
                last = "the reply is not an OpenAI chat-completions response"
                break
            time.sleep(min(2**attempt, 10))
        raise JudgeError(f"--judge-url {self.endpoint}: {last}")


def cached_reply(path: Path) -> str:
    """A reply from the judge cache; a cache file that is not what :meth:`Judge.chat` wrote
    (cut short, edited, another program's) is one error line naming it."""
    from citi.io import read_json

    try:
        entry = read_json(path)
    except CitiError as err:
        raise JudgeError(
            f"corrupted judge cache: {err}; delete it to ask the judge again"
        ) from None
    if not isinstance(entry, dict) or not isinstance(entry.get("reply"), str):
        raise JudgeError(
            f"{path}: corrupted judge cache entry (no 'reply' text); delete it to ask the "
            "judge again"
        )
    return entry["reply"]
