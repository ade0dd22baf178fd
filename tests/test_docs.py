"""The documentation of the checkout: its relative links resolve, CI runs the
README's set-up commands exactly as written, and every public function is
listed in the README with a link to the file that holds its docstring."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import fastsoftmax

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"
DOCS = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]

LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.MULTILINE)
CITED_SECTION = re.compile(r'\(section "([^"]+)"\)')

pytestmark = pytest.mark.skipif(not (README.exists() and CI.exists()),
                                reason="needs a source checkout (README.md, .ci/run)")


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set:
    return {slug(h) for h in HEADING.findall(path.read_text(encoding="utf-8"))}


def relative_links(path: Path):
    """(target path, fragment) of every link that is not a URL."""
    for _, target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, fragment = target.partition("#")
        yield (path.parent / file_part).resolve() if file_part else path, fragment


def section(text: str, name: str) -> str:
    """The body of the README section headed `name`, up to the next heading."""
    match = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^#{{1,2}} |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"README has no section {name!r}"
    return match.group(1)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    for target, fragment in relative_links(doc):
        assert target.exists(), f"{doc.name} links to {target}, which does not exist"
        if fragment and target.suffix == ".md":
            assert fragment in anchors(target), f"{doc.name} links to #{fragment}, not a heading of {target.name}"


def test_ci_runs_the_readme_commands_as_written():
    ci = CI.read_text(encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    cited = CITED_SECTION.findall(ci)
    assert cited, ".ci/run names no README section"
    ci_lines = {line.strip() for line in ci.splitlines()}
    for name in cited:
        blocks = re.findall(r"```bash\n(.*?)```", section(readme, name), re.DOTALL)
        commands = [line for block in blocks for line in block.splitlines() if line.strip()]
        assert commands, f"README section {name!r} has no command"
        for command in commands:
            assert command in ci_lines, f"CI does not run the README's {command!r} as written"


def test_quick_start_runs():
    readme = README.read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", section(readme, "Quick start"), re.DOTALL)
    names = {}
    exec(compile(code, "README.md (Quick start)", "exec"), names)
    x = names["x"]  # overwritten in place by the example
    np.testing.assert_allclose(x.sum(axis=-1), 1, rtol=1e-5)
    np.testing.assert_allclose(np.exp(names["lp"]).sum(axis=0), 1, rtol=1e-5)
    assert names["q"].shape == names["m"].shape == names["grad"].shape == x.shape
    assert np.isfinite(names["loss"])


@pytest.mark.parametrize("name", [n for n in fastsoftmax.__all__ if n != "__version__"])
def test_every_public_function_links_to_its_docstring(name):
    readme = README.read_text(encoding="utf-8")
    sources = [target for text, target in LINK.findall(readme) if text.startswith(f"`{name}(")]
    assert sources, f"the README lists no `{name}(...)` with a link"
    source = (ROOT / sources[0]).read_text(encoding="utf-8")
    assert re.search(rf"^(def {name}\(|{name}\.__doc__ =)", source, re.MULTILINE), \
        f"{sources[0]} holds no docstring of {name}"
