"""``citi serve``: a trained model behind OpenAI's chat-completions API, tool calls included
(FastAPI + uvicorn; see docs/guides/serving.md)."""
