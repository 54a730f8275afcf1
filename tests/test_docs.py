"""The user guide: the screenshot generator's pieces import and work, every picture and
page the guide and the README refer to exists, and every `studio-cli` option the
command-line page shows is one the CLI has."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md")) + [REPO / "README.md"]
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")  # alt text may span lines
PAGE_LINK = re.compile(r"(?<!!)\[[^\]]+\]\(([^)\s]+)\)")
CODE_BLOCK = re.compile(r"```\n(.*?)```", re.S)


def load_generator():
    spec = importlib.util.spec_from_file_location("docs_screenshots", DOCS / "screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = CODE_BLOCK.sub("", page.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def test_the_guide_has_its_pages():
    names = {p.name for p in DOCS.glob("*.md")}
    assert {"README.md", "label.md", "train.md", "inspect.md", "review-queues.md",
            "export.md", "cli.md", "cluster.md", "troubleshooting.md"} <= names
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for name in names - {"README.md"}:
        assert f"]({name})" in index, f"{name} is not linked from the guide's index"
    assert "](docs/README.md)" in (REPO / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_picture_referenced_exists(page):
    text = page.read_text(encoding="utf-8")
    for target in IMAGE_LINK.findall(text):
        assert not target.startswith(("http:", "https:", "/")), f"{page.name}: {target}"
        assert (page.parent / target).is_file(), f"{page.name} shows a missing {target}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_page_link_leads_somewhere(page):
    text = CODE_BLOCK.sub("", page.read_text(encoding="utf-8"))
    for target in PAGE_LINK.findall(text):
        if target.startswith(("http:", "https:", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path) if path else page
        assert linked.exists(), f"{page.name} links to a missing {path}"
        if anchor:
            assert anchor in anchors(linked), f"{page.name}: no heading #{anchor} in {path}"


def test_the_readme_opens_with_three_pictures():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    opening = text[:text.index("## System libraries")]
    assert "make run" in opening and "make test" in opening
    assert len(IMAGE_LINK.findall(opening)) == 3


def test_every_picture_is_used_small_and_made_by_the_generator():
    gen = load_generator()
    pictures = {p.name for p in (DOCS / "images").glob("*.png")}
    assert pictures == {f"{name}.png" for name in gen.SHOTS}
    used = {Path(t).name for page in PAGES
            for t in IMAGE_LINK.findall(page.read_text(encoding="utf-8"))}
    assert used <= pictures
    for name in pictures:
        size = (DOCS / "images" / name).stat().st_size
        assert size <= gen.BUDGET_BYTES, f"{name} is {size} bytes"


def test_save_png_writes_a_palette_png_within_its_budget(qapp, tmp_path):
    import numpy as np
    from PIL import Image
    from PySide6.QtGui import QImage

    gen = load_generator()
    noise = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    image = QImage(noise.data, 400, 300, 1200, QImage.Format.Format_RGB888).copy()
    roomy = gen.save_png(image, tmp_path / "roomy.png", budget=10**7)
    with Image.open(tmp_path / "roomy.png") as saved:
        assert saved.mode == "P" and saved.size == (400, 300)
    assert roomy == (tmp_path / "roomy.png").stat().st_size
    # noise does not compress: a small budget takes fewer colours, then a smaller picture
    tight = gen.save_png(image, tmp_path / "tight.png", budget=40_000)
    with Image.open(tmp_path / "tight.png") as saved:
        assert saved.size[0] < 400
    assert tight < roomy
    assert not list(tmp_path.glob("*.tmp"))


def cli_help(command: str) -> str:
    """`studio-cli COMMAND --help` as the person reads it ('' for an unknown command)."""
    import contextlib
    import io

    from studio.cli import build_parser

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([command, "--help"])
    return out.getvalue() if exit_info.value.code == 0 else ""


def commands_shown(block: str) -> list[list[str]]:
    """The words of each `studio-cli` command of a code block; indented lines (and lines
    after a backslash) continue the command above them."""
    lines: list[str] = []
    for line in block.replace("\\\n", " ").splitlines():
        if line[:1].isspace() and lines:
            lines[-1] += " " + line
        else:
            lines.append(line)
    out = []
    for line in lines:
        plain = re.sub(r"[\[\]|{}]", " ", line)
        words = shlex.split(plain, comments=True)
        if "studio-cli" in words:
            out.append(words[words.index("studio-cli") + 1:])
    return out


def test_the_cli_pages_show_only_commands_and_options_that_exist():
    helps: dict[str, str] = {}
    shown = 0
    for page in (DOCS / "cli.md", DOCS / "review-queues.md", DOCS / "export.md",
                 DOCS / "train.md", DOCS / "cluster.md"):
        for block in CODE_BLOCK.findall(page.read_text(encoding="utf-8")):
            for words in commands_shown(block):
                command = words[0]
                if command not in helps:
                    helps[command] = cli_help(command)
                assert helps[command], f"{page.name}: studio-cli has no command {command!r}"
                for word in words[1:]:
                    if word.startswith("--"):
                        flag = word.split("=")[0]
                        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])",
                                         helps[command]), f"{page.name}: {command} has no {flag}"
                        shown += 1
    assert shown > 40  # the check read the pages' commands
