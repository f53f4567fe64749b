"""Every code block of README.md and docs/*.md runs and shows what it prints.

The convention is written down in docs/internals.md ("Docs that run"); in short:

- ```python blocks run in order, one namespace and one fresh working directory per page;
- a ```text block right after a python block (only blank lines between) is its expected
  stdout: lines compared after stripping trailing whitespace, a line ``...`` matches any number
  of lines, ``...`` inside a line matches any text;
- ```console blocks: ``$ symbp ARGS`` runs ``symbp.cli.main`` in-process and
  ``$ python examples/NAME.py`` runs that script; the lines up to the next ``$`` are the
  expected stdout then stderr, matched the same way;
- ```bash blocks are set-up commands that are not run; only whitelisted commands may appear;
- ```text blocks elsewhere, ```dot and ```svg are shown as they are; any other fence fails.

Each runnable block is one test, ``page.md:LINE`` (the line of its opening fence). A block
selected on its own first runs the blocks before it on its page; after a failure the page's
later blocks are skipped.
"""

from __future__ import annotations

import importlib.util
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import symbp.gates
from symbp.cli import main as symbp_main

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

RUNNABLE = "python (with a text block after it), console ($ symbp ..., $ python examples/NAME.py)"
SHOWN = ("text", "dot", "svg")  # shown as they are, never run
BASH_ALLOWED = ("pip install", "python -m pytest", "bash .ci/run", "git clone", "cd ", "mkdocs ",
                "python docs/generate.py")
# benchmarks.md lists the commands that measured its figures; they run for minutes.
# The README's first set-up command runs the main job (its console block runs it too).
BASH_ALLOWED_ON = {"benchmarks.md": ("symbp bench", "python -m symbp.bench"),
                   "README.md": ("symbp train --dataset digits",)}
ERROR_LINE = "symbp: error:"  # a console command may fail only if its shown output says so

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block; ``expected`` is the text block shown after a python block."""

    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    expected: str | None = None
    expected_line: int | None = None

    @property
    def where(self) -> str:
        return f"{self.page.name}:{self.line}"


def fences(path: Path) -> list[Block]:
    """Every fenced block of a markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found, k = [], 0
    while k < len(lines):
        m = _FENCE.match(lines[k])
        if not m:
            k += 1
            continue
        indent, fence = len(m["indent"]), m["fence"]
        lang = m["info"].split()[0].lower() if m["info"].split() else ""
        body, end = [], k + 1
        while end < len(lines):
            close = _FENCE.match(lines[end])
            if close and close["fence"][0] == fence[0] and len(close["fence"]) >= len(fence) \
                    and not close["info"].strip():
                break
            body.append(lines[end][indent:] if lines[end][:indent].strip() == "" else lines[end])
            end += 1
        else:
            raise ValueError(f"{path.name}:{k + 1}: a code fence is never closed")
        found.append(Block(path, k + 1, lang, "\n".join(body) + "\n" if body else ""))
        k = end + 1
    return found


def _next_is(lines: list[str], after: int, block: Block) -> bool:
    """Only blank lines between line ``after`` (1-based, a closing fence) and ``block``."""
    return all(not line.strip() for line in lines[after:block.line - 1])


def page_blocks(path: Path) -> list[Block]:
    """The blocks of a page that become tests, each python block with its expected output."""
    lines = path.read_text(encoding="utf-8").splitlines()
    raw = fences(path)
    out, skip = [], set()
    for k, block in enumerate(raw):
        if k in skip:
            continue
        if block.lang == "python" and k + 1 < len(raw) and raw[k + 1].lang == "text":
            closing = block.line + block.code.count("\n") + 1  # the closing fence's line
            if _next_is(lines, closing, raw[k + 1]):
                skip.add(k + 1)
                block = Block(block.page, block.line, block.lang, block.code, raw[k + 1].code,
                              raw[k + 1].line)
        if block.lang in SHOWN:
            continue
        out.append(block)
    return out


# -- comparing output ---------------------------------------------------------------------------


def _normalized(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _line_matches(pattern: str, line: str) -> bool:
    if "..." not in pattern:
        return pattern == line
    regex = ".*".join(re.escape(part) for part in pattern.split("..."))
    return re.fullmatch(regex, line, flags=re.DOTALL) is not None


def output_matches(expected: str, actual: str) -> bool:
    """``actual`` fits ``expected``: ``...`` alone on a line matches zero or more lines,
    ``...`` inside a line any text; trailing whitespace and trailing blank lines are ignored."""
    want, got = _normalized(expected), _normalized(actual)
    # fits[i][j]: want[i:] matches got[j:], filled from the ends (no recursion)
    fits = [[False] * (len(got) + 1) for _ in range(len(want) + 1)]
    fits[len(want)][len(got)] = True
    for i in range(len(want) - 1, -1, -1):
        for j in range(len(got), -1, -1):
            if want[i].strip() == "...":
                fits[i][j] = fits[i + 1][j] or (j < len(got) and fits[i][j + 1])
            else:
                fits[i][j] = j < len(got) and fits[i + 1][j + 1] and _line_matches(want[i], got[j])
    return fits[0][0]


def _check_output(where: str, expected: str, actual: str) -> None:
    if not output_matches(expected, actual):
        pytest.fail(f"{where}: the output differs from the one shown\n--- shown:\n{expected}"
                    f"--- printed:\n{actual}", pytrace=False)


# -- running blocks -------------------------------------------------------------------------------


@dataclass
class PageState:
    """What the blocks of one page share: a namespace and a working directory."""

    workdir: Path
    namespace: dict = field(default_factory=lambda: {"__name__": "__docs__"})
    done: set = field(default_factory=set)
    failed: str | None = None


_STATES: dict[Path, PageState] = {}


def run_python(block: Block, state: PageState, capsys) -> None:
    capsys.readouterr()
    try:
        # leading newlines keep the page's line numbers in tracebacks
        exec(compile("\n" * block.line + block.code, str(block.page), "exec"), state.namespace)
    except Exception as exc:
        out = capsys.readouterr().out
        raise AssertionError(f"{block.where}: the block raised {type(exc).__name__}: {exc}\n"
                             f"--- printed before:\n{out}") from exc
    out = capsys.readouterr().out
    if block.expected is not None:
        _check_output(f"{block.where} (output at line {block.expected_line})",
                      block.expected, out)


def _commands(block: Block) -> list[tuple[int, str, str]]:
    """(line, command, expected output) of each ``$`` line of a console block."""
    lines = block.code.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    found: list[list] = []
    k = 0
    while k < len(lines):
        line = lines[k]
        if line.startswith("$ "):
            command, start = line[2:], k
            while command.endswith("\\") and k + 1 < len(lines):  # continued lines
                k += 1
                command = command[:-1] + " " + lines[k].strip()
            found.append([block.line + 1 + start, command.strip(), []])
        elif not found:
            pytest.fail(f"{block.where}: console blocks start with a `$ ` command line, "
                        f"got {line!r}", pytrace=False)
        else:
            found[-1][2].append(line)
        k += 1
    return [(line, command, "\n".join(out) + "\n") for line, command, out in found]


def _run_command(where: str, command: str, capsys, monkeypatch) -> tuple[int, str]:
    """Run one ``$`` command in-process: (exit status, stdout + stderr)."""
    words = shlex.split(command)
    capsys.readouterr()
    if words[:1] == ["symbp"]:
        status = symbp_main(words[1:])
    elif len(words) >= 2 and words[0] == "python" and re.fullmatch(r"examples/[\w-]+\.py",
                                                                   words[1]):
        script = ROOT / words[1]
        if not script.is_file():
            pytest.fail(f"{where}: no such example: {words[1]}", pytrace=False)
        monkeypatch.setattr(sys, "argv", [str(script), *words[2:]])
        try:
            runpy.run_path(str(script), run_name="__main__")
            status = 0
        except SystemExit as exc:
            status = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    else:
        pytest.fail(f"{where}: `$ {command}` cannot run here; console blocks run `$ symbp ...` "
                    "and `$ python examples/NAME.py ...` (set-up commands go in a bash block)",
                    pytrace=False)
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def run_console(block: Block, state: PageState, capsys, monkeypatch) -> None:
    for line, command, expected in _commands(block):
        where = f"{block.page.name}:{line}"
        status, output = _run_command(where, command, capsys, monkeypatch)
        if status != 0 and not any(s.startswith(ERROR_LINE) for s in expected.split("\n")):
            pytest.fail(f"{where}: `$ {command}` exited with status {status}\n{output}",
                        pytrace=False)
        if expected.strip():
            _check_output(f"{where}: `$ {command}`", expected, output)


def check_bash(block: Block) -> None:
    """Set-up commands are not run: every command must be one of the allowed kinds."""
    allowed = BASH_ALLOWED + BASH_ALLOWED_ON.get(block.page.name, ())
    lines = block.code.replace("\\\n", " ").split("\n")
    for k, line in enumerate(lines):
        line = re.sub(r"(^|\s)#.*$", "", line).strip()  # comments say anything
        if not line:
            continue
        if "$(" in line or "`" in line:
            pytest.fail(f"{block.page.name}:{block.line + 1 + k}: no command substitution in "
                        "bash blocks", pytrace=False)
        for command in re.split(r"&&|\|\||;|\|", line):
            command = command.strip()
            if not command.startswith(allowed):
                pytest.fail(f"{block.page.name}:{block.line + 1 + k}: `{command}` in a bash "
                            f"block; bash blocks hold set-up commands only ("
                            f"{', '.join(repr(a.strip()) for a in allowed)}); show runnable "
                            f"commands in a console block", pytrace=False)


def run_block(block: Block, state: PageState, capsys, monkeypatch) -> None:
    if block.lang == "python":
        run_python(block, state, capsys)
    elif block.lang == "console":
        run_console(block, state, capsys, monkeypatch)
    elif block.lang == "bash":
        check_bash(block)
    else:
        pytest.fail(f"{block.where}: a ```{block.lang or '(no language)'} block; blocks are "
                    f"{RUNNABLE}, bash (set-up commands, not run), or {', '.join(SHOWN)} "
                    "(shown, not run)", pytrace=False)


# -- the tests -------------------------------------------------------------------------------------

BLOCKS = [b for page in PAGES for b in page_blocks(page)]


@pytest.fixture(scope="module", autouse=True)
def _restore_gates():
    """Custom gates the pages register are dropped afterwards (the table is global)."""
    before = dict(symbp.gates.GATES)
    yield
    symbp.gates.GATES.clear()
    symbp.gates.GATES.update(before)


def _generate():
    """docs/generate.py as a module (without writing __pycache__ into docs/)."""
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    writes = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        spec.loader.exec_module(generate)
    finally:
        sys.dont_write_bytecode = writes
    return generate


def _run_recorded(block: Block, state: PageState, capsys, monkeypatch) -> None:
    try:
        run_block(block, state, capsys, monkeypatch)
    except BaseException:
        state.failed = block.where
        raise
    state.done.add(block.line)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_block(block: Block, capsys, monkeypatch, tmp_path_factory) -> None:
    if block.page not in _STATES:
        _STATES[block.page] = PageState(tmp_path_factory.mktemp(block.page.stem))
    state = _STATES[block.page]
    monkeypatch.chdir(state.workdir)
    if shutil.which("dot") is None:  # diagrams save their DOT text only; test_draw.py says why
        import graphviz

        monkeypatch.setattr(graphviz.Digraph, "render", _generate().save_dot_only)
    for earlier in page_blocks(block.page):  # when selected alone, replay the page up to here
        if earlier.line >= block.line or state.failed:
            break
        if earlier.line not in state.done:
            _run_recorded(earlier, state, capsys, monkeypatch)
    if state.failed:
        pytest.skip(f"needs {state.failed}, which failed")
    _run_recorded(block, state, capsys, monkeypatch)


def test_generated_pages_are_current() -> None:
    generate = _generate()
    stale = [str(p.relative_to(ROOT)) for p in generate.stale()]
    assert not stale, f"out of date: {', '.join(stale)}; run python docs/generate.py"


def test_site_builds_strictly(tmp_path) -> None:
    for module in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[docs]')")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("expected, actual, fits", [
    ("a\nb\n", "a\nb  \n\n", True),
    ("a\n...\nd\n", "a\nb\nc\nd\n", True),
    ("a\n...\nb\n", "a\nb\n", True),  # ... matches zero lines
    ("x = 1...5\n", "x = 1.2345\n", True),
    ("a\n", "a\nb\n", False),
    ("x = 1...5\n", "x = 1.2346\n", False),
    ("...\n", "", True),
])
def test_output_matching(expected: str, actual: str, fits: bool) -> None:
    assert output_matches(expected, actual) is fits


def _page(tmp_path: Path, text: str, name: str = "page.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_text_block_pairs_with_the_python_block_just_before(tmp_path) -> None:
    page = _page(tmp_path, "```python\nprint(1)\n```\n\n```text\n1\n```\n\nprose\n\n"
                           "```python\nprint(2)\n```\nprose between\n```text\n2\n```\n")
    blocks = page_blocks(page)
    assert [(b.line, b.expected) for b in blocks] == [(1, "1\n"), (11, None)]


@pytest.mark.parametrize("command, allowed", [
    ('pip install -e ".[test]" && python -m pytest -q', True),
    ("cd symbp && bash .ci/run  # comments may say anything; rm", True),
    ("pip install symbp && rm -rf /", False),
    ("pip install $(curl example.org)", False),
    ("symbp bench --quick", False),  # only on benchmarks.md
])
def test_bash_blocks_hold_set_up_commands_only(tmp_path, command, allowed) -> None:
    block = Block(tmp_path / "page.md", 1, "bash", command + "\n")
    if allowed:
        check_bash(block)
    else:
        with pytest.raises(pytest.fail.Exception):
            check_bash(block)
