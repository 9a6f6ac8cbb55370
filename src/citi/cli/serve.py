"""``citi serve``: a run, an export or a base model behind an OpenAI-compatible API."""

from __future__ import annotations

import argparse

from citi.cli.common import console


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a model with tool calls behind OpenAI's chat-completions API",
        description="Serve a training run (its adapter on its base model), a `citi export` "
        "folder or a base model (an alias, directory or hub id) at /v1/chat/completions "
        "(tools, tool_choice, tool_calls, streaming), /v1/models and /health. Prompts are "
        "rendered with the run's chat template (citi's Hermes tool prelude where the model has "
        "no tool template) and calls parsed from <tool_call> blocks, JSON or pythonic calls. "
        "Requests arriving together generate as one batch. Greedy unless a request sets a "
        "temperature.",
    )
    p.add_argument("model", metavar="RUN_OR_EXPORT", help="a run, export folder or model spec")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--max-batch", type=int, default=8, help="requests generated together")
    p.add_argument(
        "--batch-window",
        type=float,
        default=0.01,
        help="seconds a batch waits for more requests before it starts (default 0.01)",
    )
    p.add_argument(
        "--prefix-cache-tokens",
        type=int,
        default=4096,
        help="tokens of shared prompt prefixes (the tool prelude) whose keys and values are "
        "kept for reuse, least recently used dropped first; 0 turns prefix caching off "
        "(default 4096)",
    )
    p.add_argument("--api-key", help="require `Authorization: Bearer KEY` on /v1 routes")
    p.add_argument("--name", help="the model id clients send (default: the folder's name)")
    p.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda when available)")
    p.add_argument("--dtype", default="auto", help="float32, bfloat16 or auto")
    p.set_defaults(func=run)


def _check_address(host: str, port: int) -> None:
    """Fail before the model loads when the address cannot be listened on (taken, unknown)."""
    import socket

    from citi.errors import ConfigError

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as err:
        reason = err.strerror or err
        raise ConfigError(f"--host/--port: cannot listen on {host}:{port} ({reason})") from None


def run(args: argparse.Namespace) -> int:
    from citi.errors import ConfigError

    if args.max_batch < 1:
        raise ConfigError(f"--max-batch: must be at least 1, got {args.max_batch}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port: must be 0-65535, got {args.port}")
    if args.batch_window < 0:
        raise ConfigError(f"--batch-window: must be >= 0, got {args.batch_window}")
    if args.prefix_cache_tokens < 0:
        raise ConfigError(
            f"--prefix-cache-tokens: must be >= 0 (0 turns it off), got {args.prefix_cache_tokens}"
        )
    _check_address(args.host, args.port)
    import uvicorn

    from citi.models.loader import check_device
    from citi.serve.app import create_app
    from citi.serve.batching import Batcher
    from citi.serve.model import load_served

    device = check_device(args.device) if args.device else None
    served = load_served(args.model, dtype=args.dtype, device=device, name=args.name)
    batcher = Batcher(
        served,
        max_batch=args.max_batch,
        window=args.batch_window,
        prefix_cache_tokens=args.prefix_cache_tokens,
    )
    app = create_app(served, batcher, api_key=args.api_key)
    console.print(
        f"serving {served.name} on http://{args.host}:{args.port}/v1 "
        f"(context {served.context_length}, batches up to {args.max_batch})"
    )
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        batcher.close()
    return 0
