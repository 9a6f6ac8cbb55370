"""The FastAPI application: OpenAI's ``/v1/chat/completions`` (streaming and not, with tools),
``/v1/models`` and ``/health``.

Every error is OpenAI-shaped JSON (``{"error": {message, type, param, code}}``): a bad request is
a 4xx naming its parameter; a generation that fails answers its own request with a 500 and the
server keeps serving. A client that goes away mid-stream cancels its row of the batch.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from citi.errors import DataError
from citi.serve.batching import Batcher, Job
from citi.serve.calls import StreamSplitter, forced_prefix, read_answer
from citi.serve.protocol import APIError, ChatRequest, chunk, completion, parse_request, usage
from citi.serve.protocol import wire_calls as _wire_calls

DEFAULT_MAX_TOKENS = 512  # when a request names none (and the context has room)


def _sse(data: Any) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def create_app(served, batcher: Batcher, api_key: str | None = None) -> FastAPI:
    """The application serving ``served`` (a :class:`citi.serve.model.ServedModel`)."""
    app = FastAPI(title="citi serve", docs_url=None, redoc_url=None)
    created = int(time.time())

    @app.exception_handler(APIError)
    async def _api_error(request: Request, err: APIError):
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, err: HTTPException):
        return JSONResponse(
            APIError(err.status_code, str(err.detail)).body(), status_code=err.status_code
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, err: RequestValidationError):
        return JSONResponse(APIError(400, str(err)).body(), status_code=400)

    @app.exception_handler(Exception)
    async def _server_error(request: Request, err: Exception):
        body = APIError(500, f"{type(err).__name__}: {err}", kind="server_error").body()
        return JSONResponse(body, status_code=500)

    def authorize(request: Request) -> None:
        if api_key is None:
            return
        header = request.headers.get("authorization", "")
        if header != f"Bearer {api_key}":
            raise APIError(401, "invalid or missing API key", code="invalid_api_key")

    @app.get("/health")
    async def health():
        # the largest recent batch shows whether concurrent requests are generating together
        return {
            "status": "ok",
            "model": served.name,
            "largest_batch": max(batcher.batches, default=0),
            # prompt tokens whose KV came from the prefix cache / were computed for it
            "prefix_cache": {
                "hit_tokens": batcher.prefixes.hits,
                "computed_tokens": batcher.prefixes.computed,
            },
        }

    @app.get("/v1/models")
    async def models(request: Request):
        authorize(request)
        entry = {"id": served.name, "object": "model", "created": created, "owned_by": "citi"}
        return {"object": "list", "data": [entry]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        authorize(request)
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as err:
            raise APIError(400, f"the request body is not valid JSON ({err})") from None
        req = parse_request(body)
        if req.model != served.name:
            raise APIError(
                404,
                f"the model {req.model!r} does not exist; this server serves {served.name!r}",
                "model",
                "model_not_found",
            )
        prefix = forced_prefix(req.tool_choice, req.forced_name) if served.hermes_calls else ""
        prompt_ids = _prompt_ids(served, req, prefix)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        job = Job(
            prompt_ids=prompt_ids,
            max_new=_max_new(served, req, len(prompt_ids)),
            emit=lambda event: loop.call_soon_threadsafe(queue.put_nowait, event),
            sampling=_sampling(req),
            stop=req.stop,
            streaming=req.stream,
        )
        batcher.submit(job)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if req.stream:
            events = _stream(req, job, queue, prefix, completion_id, len(prompt_ids))
            return StreamingResponse(events, media_type="text/event-stream")
        try:
            event = await queue.get()
            while event[0] == "text":
                event = await queue.get()
        finally:
            job.cancelled.set()  # a no-op once done; cancels the row if this request died
        if event[0] == "error":
            raise APIError(500, event[1], kind="server_error")
        _, text, finish, n_tokens = event
        answer = read_answer(prefix + text, req.parses_calls, finish, req.forced_name)
        return completion(
            completion_id,
            served.name,
            answer.content,
            _wire_calls(answer.calls),
            answer.finish,
            usage(len(prompt_ids), n_tokens),
        )

    def _stream(req: ChatRequest, job: Job, queue, prefix, completion_id, n_prompt):
        async def events():
            try:
                yield _sse(chunk(completion_id, served.name, {"role": "assistant", "content": ""}))
                splitter = StreamSplitter(req.parses_calls, prefix)
                while True:
                    event = await queue.get()
                    if event[0] == "text":
                        delta = splitter.feed(event[1])
                        if delta:
                            yield _sse(chunk(completion_id, served.name, {"content": delta}))
                        continue
                    if event[0] == "error":
                        yield _sse(APIError(500, event[1], kind="server_error").body())
                        return
                    _, text, finish, n_tokens = event
                    rest, answer = splitter.finish(text, finish, req.forced_name)
                    if rest:
                        yield _sse(chunk(completion_id, served.name, {"content": rest}))
                    for i, call in enumerate(_wire_calls(answer.calls)):
                        delta = {"tool_calls": [{"index": i, **call}]}
                        yield _sse(chunk(completion_id, served.name, delta))
                    yield _sse(chunk(completion_id, served.name, {}, answer.finish))
                    if req.include_usage:
                        yield _sse(
                            chunk(completion_id, served.name, {}, usage=usage(n_prompt, n_tokens))
                        )
                    yield "data: [DONE]\n\n"
                    return
            finally:  # the client went away (or the stream ended): free the batch row
                job.cancelled.set()

        return events()

    return app


def _prompt_ids(served, req: ChatRequest, prefix: str) -> list[int]:
    from citi.data.chat_template import render_generation_prompt

    tools = req.tools if req.tool_choice != "none" else None
    try:
        text = render_generation_prompt(served.tokenizer, req.messages, tools, served.template)
    except DataError as err:
        raise APIError(400, str(err), "messages") from None
    return served.tokenizer(text + prefix, add_special_tokens=False)["input_ids"]


def _max_new(served, req: ChatRequest, n_prompt: int) -> int:
    room = served.context_length - n_prompt
    if room < 1 or (req.max_tokens is not None and req.max_tokens > room):
        asked = req.max_tokens or 1
        raise APIError(
            400,
            f"this model's context length is {served.context_length} tokens; the messages "
            f"take {n_prompt} and max_tokens asks for {asked} more",
            "messages",
            "context_length_exceeded",
        )
    return req.max_tokens or min(room, DEFAULT_MAX_TOKENS)


def _sampling(req: ChatRequest) -> tuple:
    if not req.temperature:  # None or 0: greedy, the default
        return ("greedy",)
    return ("sample", req.temperature, req.top_p if req.top_p is not None else 1.0, req.seed)
