"""The README stays a first page and its links cannot rot: at most 300 lines, and every relative
link in it (and between the pages of docs/) names a file that exists and, with `#anchor`, a heading
of that file, slugified as MkDocs' toc does (Python-Markdown renders each file, as MkDocs does).

CI's `mkdocs build --strict` checks the docs site itself; this test also covers the README, which
MkDocs never reads, and runs in the suite's quick loop."""

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import markdown
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 300

# The extensions of mkdocs.yml: fenced code keeps a `# comment` in a code block from being a
# heading, and toc gives every heading the id MkDocs gives it.
EXTENSIONS = ["toc", "tables", "fenced_code"]


@cache
def rendered(path: Path) -> str:
    return markdown.markdown(path.read_text(encoding="utf-8"), extensions=EXTENSIONS)


@cache
def anchors(path: Path) -> frozenset[str]:
    return frozenset(re.findall(r'<h[1-6] id="([^"]+)"', rendered(path)))


def relative_links(path: Path) -> list[str]:
    """Every href and src of the rendered file that points inside the repository."""
    targets = re.findall(r'(?:href|src)="([^"]*)"', rendered(path))
    return [target for target in targets if not urlsplit(target).scheme]


def broken_links(path: Path) -> list[str]:
    """Each relative link of `path` whose file or #anchor does not exist, with the reason."""
    problems = []
    for link in relative_links(path):
        parts = urlsplit(link)
        target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
        if not target.exists():
            problems.append(f"{link}: no such file")
        elif parts.fragment:
            if target.suffix != ".md":
                problems.append(f"{link}: an anchor into a file that is not Markdown")
            elif unquote(parts.fragment) not in anchors(target):
                problems.append(f"{link}: no heading #{parts.fragment} in {target.name}")
    return problems


def test_the_readme_is_a_first_page_of_at_most_300_lines():
    lines = README.read_text(encoding="utf-8").splitlines()

    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines; at most {README_MAX_LINES}: move the detail into docs/"
    )


def docs_home_from_readme(text: str) -> str:
    """The docs site's home page (docs/index.md) as the README makes it: the same page, its links
    into docs/ made relative to docs/."""
    return re.sub(r"\]\(docs/", "](", text)


def test_the_docs_home_page_is_the_readme():
    # docs/index.md is the README for the site (MkDocs reads only docs/): kept in step, so that
    # a fix in one (a wrong URL, a command) is not missing from the other
    assert (DOCS / "index.md").read_text(encoding="utf-8") == docs_home_from_readme(
        README.read_text(encoding="utf-8")
    ), "docs/index.md differs from README.md: copy the README's change to it"


def test_every_relative_link_of_the_readme_names_a_file_and_heading_that_exist():
    links = relative_links(README)

    assert any(link.startswith("docs/") for link in links)  # the map of the docs is there
    assert broken_links(README) == []


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda page: page.name)
def test_every_relative_link_between_the_docs_pages_exists(page):
    assert broken_links(page) == []


def test_a_broken_file_or_anchor_is_reported(tmp_path):
    # given: a page with one good link and two broken ones
    (tmp_path / "other.md").write_text(
        "# Scaling out: shards\n\n## The seed's commands, for this project\n"
    )
    page = tmp_path / "page.md"
    page.write_text(
        "[good](other.md#the-seeds-commands-for-this-project) [file](missing.md) "
        "[anchor](other.md#scaling-out) `[code](ignored.md)`\n\n```\n[fenced](ignored.md)\n```\n"
    )

    # when
    problems = broken_links(page)

    # then: the two broken ones, and nothing in code
    assert len(problems) == 2
    assert problems[0] == "missing.md: no such file"
    assert problems[1] == "other.md#scaling-out: no heading #scaling-out in other.md"


def test_the_testing_page_says_what_every_test_file_proves():
    # docs/testing.md's table has a row per tests/test_*.py: a new file without one fails here
    page = (DOCS / "testing.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `tests/(test_\w+\.py)` \|", page, re.M))
    files = {path.name for path in (ROOT / "tests").glob("test_*.py")}
    assert files - listed == set(), "add a row to docs/testing.md for each"
    assert listed - files == set(), "rows of files that are gone"
