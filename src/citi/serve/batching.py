"""Requests that arrive together generate together: a small batching queue in front of
transformers' ``generate``.

One worker thread owns the model. It takes the oldest waiting request, waits ``window`` seconds
(longer while requests keep arriving, ``BURST_WINDOWS`` windows at most) for more with the same
sampling settings (greedy requests all batch together; sampled ones batch with the same
temperature, top_p and seed), up to ``max_batch``, and generates them as one left-padded batch. A
stopping criterion called after every token reports each row's text as it grows (for
streaming) and ends each row on its own: at an EOS or end-of-turn token, a
``stop`` string, its own ``max_tokens``, or its client going away. Requests that come while a
batch runs wait for the next one. The prompt prefix the batch's rows share (the tool prelude)
comes from a :class:`citi.serve.prefix_cache.PrefixCache` when it is long enough, so only each
row's own tokens are prefilled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from citi.serve.prefix_cache import CACHE_ARG, PrefixCache, shared_prefix

log = logging.getLogger(__name__)

# How long a burst may keep a batch waiting, in windows. The event loop renders and tokenizes
# each request before it reaches the queue, so on a loaded machine 16 simultaneous requests
# arrived over more than ten windows (0.1 s) and were split into two batches, the second waiting
# for the whole first one; a lone request still waits one window only.
BURST_WINDOWS = 50


@dataclass
class Job:
    """One request's generation. ``emit`` is called from the worker thread with
    ``("text", text_so_far)`` (when ``streaming``), then ``("done", text, finish, n_tokens)``
    or ``("error", message)``."""

    prompt_ids: list[int]
    max_new: int
    emit: Callable[[tuple], Any]
    sampling: tuple = ("greedy",)  # or ("sample", temperature, top_p, seed)
    stop: list[str] = field(default_factory=list)
    streaming: bool = False
    cancelled: threading.Event = field(default_factory=threading.Event)
    generated: list[int] = field(default_factory=list)
    text: str = ""
    done: bool = False

    def finish(self, reason: str) -> None:
        self.done = True
        self.emit(("done", self.text, reason, len(self.generated)))


def _stop_start(text: str, stops: list[str]) -> int:
    """How many characters at the end of ``text`` may be the start of a stop string (held back
    from streaming until the next token tells)."""
    return max(
        (k for s in stops for k in range(len(s) - 1, 0, -1) if text.endswith(s[:k])), default=0
    )


class _Rows(StoppingCriteria):
    """Per-row bookkeeping after each new token; returns which rows are finished."""

    def __init__(self, jobs: list[Job], width: int, tokenizer, stop_ids: list[int]):
        self.jobs, self.width, self.tokenizer = jobs, width, tokenizer
        self.stop_ids = set(stop_ids)

    def _step(self, job: Job, token: int) -> None:
        if token in self.stop_ids:
            return job.finish("stop")
        job.generated.append(token)
        text = self.tokenizer.decode(job.generated, skip_special_tokens=True)
        cuts = [text.find(s) for s in job.stop if s in text]
        if cuts:
            job.text = text[: min(cuts)]
            return job.finish("stop")
        if not text.endswith("\ufffd"):  # a character cut between tokens waits for its end
            job.text = text
        if len(job.generated) >= job.max_new:
            job.text = text
            return job.finish("length")
        if job.cancelled.is_set():
            return job.finish("cancelled")
        if job.streaming and job.text == text:
            job.emit(("text", text[: len(text) - _stop_start(text, job.stop)]))

    def __call__(self, input_ids, scores, **kwargs):
        last = input_ids[:, -1].tolist()
        for job, token in zip(self.jobs, last, strict=True):
            if not job.done:
                self._step(job, token)
        return torch.tensor([job.done for job in self.jobs], device=input_ids.device)


class Batcher:
    """The worker thread and its queue (see the module docstring)."""

    def __init__(
        self, served, max_batch: int = 8, window: float = 0.01, prefix_cache_tokens: int = 4096
    ):
        self.served, self.max_batch, self.window = served, max_batch, window
        # owned by the worker thread, like the model
        self.prefixes = PrefixCache(served.model, max_tokens=prefix_cache_tokens)
        self._pending: list[Job] = []
        self._cond = threading.Condition()
        self._closed = False
        self.batches: list[int] = []  # sizes of recent batches (for the load benchmark)
        self._thread = threading.Thread(target=self._loop, name="citi-batcher", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        with self._cond:
            self._pending.append(job)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _take(self) -> list[Job] | None:
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            kind = self._pending[0].sampling
            # A burst of requests is taken whole: each arrival gives the next one another
            # window, up to BURST_WINDOWS windows in all.
            start = time.monotonic()
            deadline, seen = start + self.window, 0
            while True:
                same = [j for j in self._pending if j.sampling == kind]
                now = time.monotonic()
                if len(same) > seen:
                    deadline = min(start + BURST_WINDOWS * self.window, now + self.window)
                    seen = len(same)
                if len(same) >= self.max_batch or now >= deadline:
                    break
                self._cond.wait(deadline - now)
            batch = same[: self.max_batch]
            for job in batch:
                self._pending.remove(job)
        return batch

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            batch = [j for j in batch if not j.cancelled.is_set()]
            if not batch:
                continue
            self.batches = [*self.batches[-999:], len(batch)]
            try:
                self._generate(batch)
            except Exception as err:  # one failed batch answers its requests; the server lives
                log.exception("generation failed")
                for job in batch:
                    if not job.done:
                        job.done = True
                        job.emit(("error", f"generation failed: {type(err).__name__}: {err}"))

    def _generate(self, batch: list[Job]) -> None:
        served = self.served
        tokenizer = served.tokenizer
        width = max(len(j.prompt_ids) for j in batch)
        pad = tokenizer.pad_token_id
        kwargs: dict[str, Any] = {}
        shared = shared_prefix([j.prompt_ids for j in batch]) if self.prefixes.enabled else 0
        if shared >= self.prefixes.min_tokens:
            # [shared prefix | pad... | row's rest]: the prefix's KV comes from the cache
            kv = self.prefixes.kv(batch[0].prompt_ids[:shared])
            kwargs[CACHE_ARG] = self.prefixes.batch(kv, len(batch))
            head = batch[0].prompt_ids[:shared]
            ids = [
                head + [pad] * (width - len(j.prompt_ids)) + j.prompt_ids[shared:] for j in batch
            ]
            mask = [
                [1] * shared
                + [0] * (width - len(j.prompt_ids))
                + [1] * (len(j.prompt_ids) - shared)
                for j in batch
            ]
        else:
            ids = [[pad] * (width - len(j.prompt_ids)) + j.prompt_ids for j in batch]
            mask = [[0] * (width - len(j.prompt_ids)) + [1] * len(j.prompt_ids) for j in batch]
        kwargs |= {
            "max_new_tokens": max(j.max_new for j in batch),
            "pad_token_id": pad,
            "eos_token_id": served.stop_ids or None,
            "stopping_criteria": StoppingCriteriaList(
                [_Rows(batch, width, tokenizer, served.stop_ids)]
            ),
        }
        sampling = batch[0].sampling
        if sampling[0] == "greedy":
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            _, temperature, top_p, seed = sampling
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=None)
            if seed is not None:
                torch.manual_seed(seed)
        device = served.device
        with torch.inference_mode():
            served.model.generate(
                input_ids=torch.tensor(ids, device=device),
                attention_mask=torch.tensor(mask, device=device),
                **kwargs,
            )
        for job in batch:
            if not job.done:  # generate stopped at its own limit first
                job.finish("length")
