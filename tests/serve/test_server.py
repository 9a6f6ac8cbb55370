"""``citi serve`` on a tiny trained run, driven by the official ``openai`` client as a real
client over HTTP: the tool round trip (streaming and not), tool_choice, batching, and every bad
request answered with its OpenAI-shaped 4xx while the server keeps answering.

The tiny model is random: where a test needs a call, tests/serve/scripted_serve.py scripts the
model's tokens (everything else in the server runs as shipped); elsewhere the tests check the
structure of the answers, not their text."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest

from citi.train.loop import Trainer
from tests.helpers import small_config
from tests.serve.scripted_serve import ANSWER

KEY = "test-key"
ROOT = Path(__file__).resolve().parents[2]
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, data_dir, selection_file):
    run = tmp_path_factory.mktemp("citi") / "run"
    Trainer(small_config(data_dir, selection_file, method="citi"), run).run()
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    command = [sys.executable, str(ROOT / "tests/serve/scripted_serve.py"), "serve", str(run)]
    command += ["--port", str(port), "--api-key", KEY, "--max-batch", "4", "--name", "tiny"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(f"{base}/health", timeout=1)
            break
        except OSError:
            assert process.poll() is None, process.stdout.read().decode()
            time.sleep(0.2)
    yield base, process
    process.terminate()
    process.wait(30)


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server[0]}/v1", api_key=KEY, max_retries=0, timeout=120)


def _post(base: str, data: bytes, key: str = KEY):
    request = urllib.request.Request(
        f"{base}/v1/chat/completions",
        data=data,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _still_answers(client, server):
    assert server[1].poll() is None
    reply = client.chat.completions.create(model="tiny", messages=ASK, max_tokens=2)
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_models_and_health(client, server):
    assert [m.id for m in client.models.list()] == ["tiny"]
    with urllib.request.urlopen(f"{server[0]}/health") as response:
        assert json.loads(response.read())["status"] == "ok"


def test_tool_round_trip_call_then_result_then_answer(client):
    first = client.chat.completions.create(model="tiny", messages=ASK, tools=[TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert not choice.message.content  # the call is not echoed as text

    history = [
        *ASK,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "sunny"}'},
    ]
    second = client.chat.completions.create(model="tiny", messages=history, tools=[TOOL])
    assert second.choices[0].message.content == ANSWER
    assert second.choices[0].message.tool_calls is None
    assert second.choices[0].finish_reason == "stop"
    assert second.usage.completion_tokens > 0


def test_streamed_round_trip_sends_call_deltas_and_no_call_text(client):
    chunks = list(
        client.chat.completions.create(model="tiny", messages=ASK, tools=[TOOL], stream=True)
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert not "".join(d.content or "" for d in deltas).strip()
    calls = [tc for d in deltas for tc in d.tool_calls or []]
    assert [(c.index, c.function.name) for c in calls] == [(0, "get_weather")]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    history = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [c.model_dump() for c in calls]},
        {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"},
    ]
    for c in history[1]["tool_calls"]:
        c.pop("index")
    stream = client.chat.completions.create(
        model="tiny",
        messages=history,
        tools=[TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    assert chunks[-1].usage.completion_tokens > 0


def test_tool_choice_none_answers_in_text_and_a_named_function_is_called(client):
    none = client.chat.completions.create(
        model="tiny", messages=ASK, tools=[TOOL], tool_choice="none", max_tokens=8
    )
    assert none.choices[0].message.tool_calls is None
    assert none.choices[0].finish_reason in ("stop", "length")
    named = client.chat.completions.create(
        model="tiny",
        messages=ASK,
        tools=[TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    (call,) = named.choices[0].message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_weather",
        {"city": "Paris"},
    )


def test_plain_chat_streamed_and_not_agree_and_stop_and_max_tokens_hold(client):
    plain = client.chat.completions.create(model="tiny", messages=ASK, max_tokens=12)
    text = plain.choices[0].message.content
    assert plain.usage.completion_tokens <= 12
    assert plain.choices[0].message.tool_calls is None  # no tools: never parsed as a call
    stream = client.chat.completions.create(model="tiny", messages=ASK, max_tokens=12, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == text  # greedy
    stop = text[4:6]
    if stop.strip() and "\ufffd" not in text:
        stopped = client.chat.completions.create(
            model="tiny", messages=ASK, max_tokens=12, stop=stop
        )
        assert stopped.choices[0].message.content == text[: text.find(stop)]
        assert stopped.choices[0].finish_reason == "stop"
        streamed = client.chat.completions.create(
            model="tiny", messages=ASK, max_tokens=12, stop=stop, stream=True
        )
        chunks = [c.choices[0] for c in streamed if c.choices]
        assert "".join(c.delta.content or "" for c in chunks) == text[: text.find(stop)]
    seeded = [
        client.chat.completions.create(
            model="tiny", messages=ASK, max_tokens=8, temperature=1.0, top_p=0.9, seed=3
        )
        .choices[0]
        .message.content
        for _ in range(2)
    ]
    assert seeded[0] == seeded[1]


def test_concurrent_requests_are_batched(client, server):
    replies = []
    threads = [
        threading.Thread(
            target=lambda: replies.append(
                client.chat.completions.create(model="tiny", messages=ASK, max_tokens=24)
            )
        )
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(replies) == 6 and all(r.choices[0].message.content is not None for r in replies)
    with urllib.request.urlopen(f"{server[0]}/health") as response:
        health = json.loads(response.read())
    assert health["largest_batch"] > 1
    # the rows of a batch share their prompt but its last token: its KV is computed once
    assert health["prefix_cache"]["computed_tokens"] > 0


BAD = {
    "not a conversation": ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages"),
    "a result with no call": ({"messages": [{"role": "tool", "content": "x"}]}, "messages"),
    "a call on a user turn": (
        {
            "messages": [
                {"role": "user", "content": "x", "tool_calls": [{"function": {"name": "f"}}]}
            ]
        },
        "messages",
    ),
    "messages not a list": ({"messages": "hello"}, "messages"),
    "tools not schemas": (
        {"messages": ASK, "tools": [{"type": "function", "function": {}}]},
        "tools",
    ),
    "tools not a list": ({"messages": ASK, "tools": "get_weather"}, "tools"),
    "an unknown tool forced": (
        {
            "messages": ASK,
            "tools": [TOOL],
            "tool_choice": {"type": "function", "function": {"name": "x"}},
        },
        "tool_choice",
    ),
    "max_tokens 0": ({"messages": ASK, "max_tokens": 0}, "max_tokens"),
    "max_tokens negative": ({"messages": ASK, "max_tokens": -3}, "max_tokens"),
    "temperature too high": ({"messages": ASK, "temperature": 7}, "temperature"),
    "over the context": (
        {"messages": [{"role": "user", "content": "a " * 800}], "max_tokens": 5},
        "messages",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_requests_get_their_4xx_and_the_server_keeps_answering(client, server, case):
    body, param = BAD[case]
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny", **body)
    assert err.value.status_code == 400
    assert err.value.body["param"] == param and err.value.body["message"]
    _still_answers(client, server)


def test_malformed_json_unknown_model_and_a_wrong_key(client, server):
    status, body = _post(server[0], b'{"model": "tiny", "messages": [')
    assert status == 400 and "not valid JSON" in body["error"]["message"]
    status, body = _post(server[0], b"[1, 2]")
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-4o", messages=ASK)
    assert err.value.body["code"] == "model_not_found"
    wrong = openai.OpenAI(base_url=f"{server[0]}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="tiny", messages=ASK)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    _still_answers(client, server)


def test_a_client_disconnecting_mid_stream_leaves_the_server_serving(client, server):
    port = int(server[0].rsplit(":", 1)[1])
    body = json.dumps({"model": "tiny", "messages": ASK, "max_tokens": 400, "stream": True})
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(request.encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
    _still_answers(client, server)
    _still_answers(client, server)
