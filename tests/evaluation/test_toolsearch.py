"""API-Bank's ToolSearcher: the set-up installs the embedding route, and it is what loads."""

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from citi.evaluation.benchmarks import toolsearch

REPO = Path(__file__).resolve().parents[2]


def _requirement_names(specs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", s, maxsplit=1)[0].lower().replace("_", "-") for s in specs}


def test_a_fresh_clone_installs_the_embedding_tool_searcher(tmp_path):
    """Clone the committed tree, ask make what `make install` would run there (a fresh clone has
    no .venv, so the whole recipe), and check it installs every package the ONNX route needs."""
    tomllib = pytest.importorskip("tomllib")
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    dry = subprocess.run(
        ["make", "-n", "install", f"VENV={tmp_path / 'venv'}", "CITI_DATA_DIR="],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.replace("\\\n", " ")
    extras = tomllib.loads((clone / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    installed: set[str] = set()
    for line in dry.splitlines():
        words = shlex.split(line)
        if len(words) < 3 or not words[0].endswith("/pip") or words[1] != "install":
            continue
        args = [w for w in words[2:] if not w.startswith("-")]
        for arg in args:
            local = re.fullmatch(r"\.\[(.*)\]", arg)
            if local:  # the project itself with extras: their requirements count
                for extra in local.group(1).split(","):
                    installed |= _requirement_names(extras[extra.strip()])
            else:
                installed |= _requirement_names([arg])
    assert set(toolsearch.SETUP_PACKAGES) <= installed, dry


def test_the_installed_environment_scores_tool_searcher_with_embeddings():
    """What `make` built (CI builds it from a fresh clone): the embedder that loads is not the
    keyword fallback, and it retrieves by meaning where keyword overlap cannot."""
    toolsearch.default_embedder.cache_clear()
    name, embed = toolsearch.default_embedder()
    assert name in ("onnx", "sentence-transformers"), (
        f"ToolSearcher falls back to {name!r}: run `make install` (installs "
        + ", ".join(toolsearch.SETUP_PACKAGES)
        + ")"
    )
    corpus = [
        ("QueryStock", "query stockThis API queries the stock price of a given stock code."),
        ("GetToday", "get todayThis API gets the current date."),
        ("SendEmail", "send emailThis API for sending email, given the receiver and content."),
    ]
    searcher = toolsearch.ToolSearcher(corpus, embed)
    assert searcher.best("what is the date") == "GetToday"
    assert searcher.best("mail a message to someone") == "SendEmail"
    assert searcher.best("share value of a company") == "QueryStock"
    # keyword overlap: 'date' alone is not over half of 'what is the date'
    assert not toolsearch.keywords_match("what is the date", "today date")
