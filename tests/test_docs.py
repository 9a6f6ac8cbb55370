"""The README and the docs site say only what is true of this checkout: every `citi ...` command
line they show parses with the real parser, and every repository path they name is tracked by
git. (`make test` also builds the site with `mkdocs build --strict`, which checks the links and
anchors between pages.) The reports' own pages (report.md, included into the site, and
ARTIFACTS.md) are held to the same rules, and every file a report links to is tracked. The
docs' Python snippets run on a tiny model."""

from __future__ import annotations

import argparse
import ast
import re
import shlex
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from citi.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
REPORTS = sorted((ROOT / "reports").glob("*/report.md"))
ARTIFACTS = sorted((ROOT / "reports").glob("*/ARTIFACTS.md"))
PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").rglob("*.md")])
PAGES += REPORTS + ARTIFACTS
PAGES = [p for p in PAGES if "analysis" not in p.relative_to(ROOT).parts]  # report data, no prose

# Placeholders a command line may hold that no parser can take. Kept tiny and explicit:
# `...` stands for "the other options", `[--opt value]` marks an optional part (parsed with it).
ELLIPSIS = "..."

FENCE = re.compile(r"^(\s*)```")
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
ASSIGN = re.compile(r"^(?:export\s+)?([A-Za-z_]\w*)=(.*)$")
VARIABLE = re.compile(r"\$\{?([A-Za-z_]\w*)\}?")
CITI = re.compile(r"(?:^|[\s;(])(?:citi|-m citi\.cli\.main)\s+(.*)$")


def _blocks(text: str) -> tuple[list[list[str]], list[str]]:
    """Fenced code blocks (lists of lines, backslash continuations joined) and the prose lines."""
    blocks, prose, block, fenced = [], [], [], False
    for line in text.splitlines():
        if FENCE.match(line):
            if fenced:
                blocks.append(block)
            fenced, block = not fenced, []
            continue
        if not fenced:
            prose.append(line)
        elif block and block[-1].endswith("\\"):
            block[-1] = block[-1][:-1] + " " + line.strip()
        else:
            block.append(line)
    return blocks, prose


def _command_lines(page: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(where, arguments after `citi`) for every citi command line in a page's shell blocks, and
    for every inline mention of a command (`citi train --resume`)."""
    blocks, prose = _blocks(page.read_text())
    found, mentions = [], []
    for block in blocks:
        variables: dict[str, str] = {}
        for line in block:
            line = line.strip().removeprefix("$ ")
            if line.startswith(("citi:", ">>>", "from ", "import ")):
                continue  # an error message, or Python
            assign = ASSIGN.match(line)
            if assign and "citi " not in line:
                try:
                    variables[assign[1]] = " ".join(shlex.split(assign[2]))
                except ValueError:
                    pass
                continue
            match = CITI.search(line)
            if match:
                # Shell variables the block defines are expanded; others (loop variables) vanish.
                args = VARIABLE.sub(lambda m, known=variables: known.get(m[1], ""), match[1])
                found.append((f"{page.name}: {line}", args))
    for line in prose:
        for span in INLINE.findall(line):
            if span.startswith("citi ") and not span.startswith("citi: "):
                mentions.append((f"{page.name}: `{span}`", span[len("citi ") :]))
    return found, mentions


def _argv(args: str) -> list[str]:
    tokens = shlex.split(args, comments=True)
    for stop in ("|", "&&", ";", ">", "2>&1"):
        if stop in tokens:
            tokens = tokens[: tokens.index(stop)]
    return [t.strip("[]") for t in tokens if t.strip("[]") and t != ELLIPSIS]


COMMANDS = [c for page in PAGES for c in _command_lines(page)[0]]
MENTIONS = [c for page in PAGES for c in _command_lines(page)[1]]


def test_the_docs_show_citi_commands():
    commands = {args.split()[0] for _, args in COMMANDS + MENTIONS if args.split()}
    assert {"train", "eval", "importance", "reproduce", "serve", "export", "plan"} <= commands


def test_every_committed_report_says_how_to_regenerate_what_git_leaves_out():
    # Predictions, caches and importance scores are not tracked (.gitignore): each report says
    # which, and the command that writes them again.
    assert REPORTS, "reports/*/report.md"
    missing = [r.parent.name for r in REPORTS if not (r.parent / "ARTIFACTS.md").is_file()]
    assert not missing, f"reports without ARTIFACTS.md: {missing}"
    for page in ARTIFACTS:
        commands = [args for _, args in _command_lines(page)[0]]
        assert any(a.split()[0] in {"reproduce", "eval", "lm-eval"} for a in commands), page


@pytest.mark.parametrize("where,args", COMMANDS, ids=[w[:80] for w, _ in COMMANDS])
def test_every_citi_command_in_the_docs_parses(where, args):
    argv = _argv(args)
    parser = build_parser()
    try:
        parsed, extra = parser.parse_known_args(argv)
    except SystemExit as exit:  # argparse's way of saying no
        pytest.fail(f"{where}\n  citi {' '.join(argv)}: the parser refuses it (exit {exit.code})")
    # As citi.cli.main.main: only `citi lm-eval` hands unknown arguments on (to lm-eval).
    assert not extra or parsed.command == "lm-eval", f"{where}: unrecognized {extra}"


def _subcommand(parser: argparse.ArgumentParser, tokens: list[str]):
    """The (sub)parser that `tokens` name (`analyze jaccard`), and the tokens after them."""
    while tokens:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subparsers or tokens[0] not in subparsers[0].choices:
            break
        parser, tokens = subparsers[0].choices[tokens[0]], tokens[1:]
    return parser, tokens


@pytest.mark.parametrize("where,args", MENTIONS, ids=[w[:80] for w, _ in MENTIONS])
def test_every_citi_command_the_docs_mention_exists_with_its_options(where, args):
    # A mention in prose names a command and maybe some of its options, without the required
    # arguments: the command and every option it names must exist.
    tokens = _argv(args)
    parser, rest = _subcommand(build_parser(), tokens)
    assert parser.prog != "citi" or not tokens, f"{where}: no such command {tokens[0]!r}"
    options = parser._option_string_actions
    unknown = [t for t in rest if t.startswith("--") and t.split("=")[0] not in options]
    assert not unknown, f"{where}: {parser.prog} has no option {unknown}"


# Repository paths named in inline code or as link targets.
TOP = ("src/", "tests/", "configs/", "benchmarks/", "docs/", "reports/", ".ci/", "citi/")
FILES = {"Makefile", "pyproject.toml", "README.md", "CHANGELOG.md", "mkdocs.yml"}
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _named_paths(page: Path) -> list[str]:
    _, prose = _blocks(page.read_text())
    paths = []
    for line in prose:
        for span in INLINE.findall(line):
            span = span.strip()
            if (span.startswith(TOP) or span in FILES) and not re.search(r"[<>*{}$\s\[]", span):
                paths.append(span)
    return paths


def _tracked() -> set[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    tracked = set(files)
    for f in files:  # and every folder holding a tracked file
        parts = f.split("/")
        tracked.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return tracked


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_repository_path_the_docs_name_is_tracked(page):
    tracked = _tracked()
    missing = []
    for path in _named_paths(page):
        clean = path.rstrip("/").split(":")[0].split("#")[0]
        if clean.startswith("citi/"):  # a module path, as the docs write them
            clean = "src/" + clean
        if clean not in tracked:
            missing.append(path)
    assert not missing, f"{page.relative_to(ROOT)} names paths git does not track: {missing}"


def test_every_relative_link_of_the_readme_resolves():
    # The site's links are checked by `mkdocs build --strict`; the README is outside the site.
    tracked = _tracked()
    targets = LINK.findall((ROOT / "README.md").read_text())
    relative = [t.split("#")[0] for t in targets if "://" not in t and not t.startswith("#")]
    assert relative, "the README links into the docs"
    missing = [t for t in relative if t.rstrip("/") not in tracked]
    assert not missing, f"README.md links to files git does not track: {missing}"


@pytest.mark.parametrize("report", REPORTS, ids=[r.parent.name for r in REPORTS])
def test_every_file_a_report_links_to_is_tracked(report):
    # The site shows them (results pages include report.md); a fresh clone must have them.
    tracked = _tracked()
    folder = report.parent.relative_to(ROOT)
    targets = [t.split("#")[0] for t in LINK.findall(report.read_text()) if "://" not in t]
    missing = [t for t in targets if t and (folder / t).as_posix() not in tracked]
    assert not missing, f"{report.relative_to(ROOT)} links to files git does not track: {missing}"


def test_the_reference_pages_are_generated_from_the_code(tmp_path, monkeypatch):
    # docs/gen_reference.py runs at every site build; here it writes the pages to a folder.
    import dataclasses
    import runpy

    from citi.evaluation.registry import TASKS
    from citi.train.config import TrainConfig

    monkeypatch.setattr("sys.argv", ["gen_reference.py", str(tmp_path)])
    runpy.run_path(str(ROOT / "docs" / "gen_reference.py"), run_name="__main__")
    cli = (tmp_path / "reference" / "cli.md").read_text()
    for path, _ in _subcommands(build_parser(), ["citi"]):
        assert f" {' '.join(path)}\n" in cli, f"no --help of {' '.join(path)}"
    config = (tmp_path / "reference" / "config.md").read_text()
    assert all(f"| `{f.name}` |" in config for f in dataclasses.fields(TrainConfig))
    assert "| `batch_size` | `int` | `4` | per device" in config  # the option's help
    registries = (tmp_path / "reference" / "registries.md").read_text()
    assert all(f"| `{name}` |" in registries for name in TASKS)
    assert "::: citi.train.loop.Trainer" in (tmp_path / "reference" / "api.md").read_text()


def _subcommands(parser: argparse.ArgumentParser, path: list[str]):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subcommands(sub, [*path, name])


# Python snippets run as tests, on a tiny model. Each runs in a fresh namespace, in an empty
# folder, with the fixture data as CITI_DATA_DIR and the default model swapped for tiny-llama;
# `base` (a tiny-llama model) and `rows` (canonical conversations) are there for snippets that
# take them as given. A comment line right after an expression is its expected repr. A snippet
# that cannot run here says why on the line before its fence: <!-- not run: REASON -->.
PYTHON_FENCE = re.compile(r"^(\s*)```python\s*$")
NOT_RUN = re.compile(r"^\s*<!-- not run: (\S.*?)\s*-->\s*$")


def _python_snippets():
    snippets, skipped = [], []
    for page in PAGES:
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            fence = PYTHON_FENCE.match(line)
            if not fence:
                continue
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            where = f"{page.relative_to(ROOT)}:{i + 1}"
            code = textwrap.dedent("\n".join(lines[i + 1 : end]))
            reason = NOT_RUN.match(lines[i - 1]) if i else None
            (skipped if reason else snippets).append((where, reason[1] if reason else code))
    return snippets, skipped


SNIPPETS, NOT_RUN_SNIPPETS = _python_snippets()


def test_the_docs_python_snippets_are_found():
    assert len(SNIPPETS) >= 5, SNIPPETS
    # A snippet left out must say why (an empty reason does not match NOT_RUN at all).
    assert all(reason for _, reason in NOT_RUN_SNIPPETS)


def _run_snippet(code: str, where: str, namespace: dict) -> None:
    """Run ``code`` statement by statement; an expression followed by a comment line must
    have that comment as its repr."""
    tree = ast.parse(code, filename=where)
    lines = code.splitlines()
    for node in tree.body:
        shown = lines[node.end_lineno].strip() if node.end_lineno < len(lines) else ""
        if isinstance(node, ast.Expr) and shown.startswith("# "):
            target = ast.Name(id="__shown__", ctx=ast.Store())
            assign = ast.copy_location(ast.Assign(targets=[target], value=node.value), node)
            node = ast.fix_missing_locations(assign)
            exec(compile(ast.Module([node], []), where, "exec"), namespace)  # the docs' own code
            assert repr(namespace["__shown__"]) == shown[2:], f"{where}: line {node.lineno}"
        else:
            exec(compile(ast.Module([node], []), where, "exec"), namespace)  # the docs' own code


@pytest.mark.parametrize("where,code", SNIPPETS, ids=[w for w, _ in SNIPPETS])
def test_every_python_snippet_in_the_docs_runs(where, code, data_dir, tmp_path, monkeypatch):
    from citi.models import load_model
    from citi.models.loader import DEFAULT_MODEL
    from tests.fixtures.tool_data import CANONICAL

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CITI_DATA_DIR", str(data_dir))
    code = code.replace(f'"{DEFAULT_MODEL}"', '"tiny-llama"')
    namespace = {"__name__": "__doc_snippet__", "rows": [CANONICAL]}
    if re.search(r"\bbase\b", code):
        namespace["base"] = load_model("tiny-llama", device="cpu").model
    _run_snippet(code, where, namespace)
