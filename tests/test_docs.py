"""The documentation: it builds offline with warnings as errors, its API page names
every public name, its flags table is the command line's, and its examples run."""

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from once import made_once

import inna_optax

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def html():
    """The site built from docs/ (notebooks rendered without running them: the
    notebook tests run them), once per session (once.made_once)."""
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_nb")

    def build(out):
        env = {**os.environ, "INNA_DOCS_EXECUTE": "0"}
        command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
        done = subprocess.run(
            [*command, "-d", str(out / ".doctrees"), str(DOCS), str(out)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]

    return made_once("html", build)


@pytest.mark.slow
def test_api_page_names_every_public_name(html):
    pytest.importorskip("flax")
    from inna_optax import training

    api = (html / "api.html").read_text()
    missing = []
    for module in (inna_optax, training):
        for name in module.__all__:
            full = f"{module.__name__}.{name}"
            page = f'href="api/generated/{full}.html"'
            anchor = re.search(rf'id="[\w.]*\.{re.escape(name)}"', api)
            if page not in api and not anchor:
                missing.append(full)
    assert not missing, f"not on the API page: {missing}"
    # each linked page exists and carries the docstring's summary
    page = (html / "api" / "generated" / "inna_optax.inna.html").read_text()
    assert "INNA with optional decoupled weight decay" in page


@pytest.mark.slow
def test_pages_and_rendered_math(html):
    for page in ("index", "getting_started", "inna", "training", "reproducing", "performance"):
        assert (html / f"{page}.html").exists(), page
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert (html / "notebooks" / f"{notebook.stem}.html").exists(), notebook.name
    inna = (html / "inna.html").read_text()
    assert "mathjax" in inna.lower() and r"\theta_{k+1}" in inna


def _anchors(page: Path) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', page.read_text()))


@pytest.mark.slow
def test_the_built_sites_links_reach_their_pages_and_anchors(html):
    """Every link between the site's own pages names a page that was built and, with
    a fragment, an element of it with that id (Sphinx's -W does not check them)."""
    root = html.resolve()
    pages = sorted(page.resolve() for page in root.rglob("*.html"))
    ids = {page: _anchors(page) for page in pages}
    dead = []
    for page in pages:
        for href in re.findall(r'href="([^"]+)"', page.read_text()):
            if re.match(r"[a-z]+:", href) or href.startswith("//") or "_static" in href:
                continue
            path, _, fragment = href.partition("#")
            target = (page.parent / path).resolve() if path else page
            if target.suffix != ".html":
                continue
            if target not in ids or (fragment and fragment not in ids[target]):
                dead.append(f"{page.relative_to(root)} -> {href}")
    assert dead == []


@pytest.mark.slow
def test_no_flag_is_rendered_with_an_en_dash(html):
    """'--steps' typed outside code font becomes '–steps' (an en dash) in the site."""
    found = {}
    for page in sorted(html.rglob("*.html")):
        text = re.sub(r"<[^>]+>", " ", page.read_text())
        if hits := re.findall(r"(?<![\w\d])\u2013[a-z][\w-]*", text):
            found[str(page.relative_to(html))] = sorted(set(hits))[:5]
    assert found == {}


def test_every_page_has_one_search_box_and_phones_wrap_code(html):
    """The header's search box, not a second one in the sidebar (seen in screenshots at
    1400 px: `docs/screenshots.py`); code blocks wrap on a phone-width window."""
    for page in ("index.html", "training.html", "api.html"):
        text = (html / page).read_text()
        sidebar = text[text.index('class="bd-sidebar-primary') :]
        sidebar = sidebar[: sidebar.index("</div>\n</div>")]
        assert "search-button-field" not in sidebar, page
        assert text.count('class="bd-search d-flex') == 1 and "custom.css" in text, page
    css = (html / "_static" / "custom.css").read_text()
    assert "@media (max-width: 720px)" in css and "pre-wrap" in css


def _help_options() -> dict[str, str]:
    """Each option of `python -m inna_optax.train --help` with its help text, as
    argparse prints it (whitespace folded)."""
    done = subprocess.run(
        [sys.executable, "-m", "inna_optax.train", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "1000"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    options, current = {}, None
    for line in done.stdout.split("options:", 1)[1].splitlines():
        head = re.match(r"  (-\S.*?)(?:\s{2,}(.*))?$", line)
        if head:
            current = re.findall(r"--[\w-]+", head.group(1))
            for option in current:
                options[option] = head.group(2) or ""
        elif current and line.startswith(" " * 8):
            for option in current:
                options[option] = (options[option] + " " + line.strip()).strip()
    options.pop("--help", None)
    options = {k: " ".join(v.split()) for k, v in options.items()}
    return options


def test_flags_table_is_the_command_lines_help():
    pytest.importorskip("flax")
    from inna_optax.training.flags import flags_table

    table = {}
    for row in flags_table().splitlines()[2:]:
        names, _, text = (cell.strip() for cell in row.strip("|").split(" | ", 2))
        for option in re.findall(r"`(--[\w-]+)`", names):
            table[option] = " ".join(text.replace("\\|", "|").replace("\\<", "<").split())
    options = _help_options()
    assert set(table) == set(options)
    for option, text in options.items():
        assert table[option] == text, option


EXAMPLES = [
    (f"{page}.md[block {i}]", block)
    for page in ("getting_started", "training")
    for i, block in enumerate(
        re.findall(r"```python\n(.*?)```", (DOCS / f"{page}.md").read_text(), flags=re.S)
    )
]


@pytest.mark.slow
@pytest.mark.parametrize("where, code", EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_the_guides_python_examples_run(where, code, capsys):
    pytest.importorskip("flax")
    exec(compile(code, where, "exec"), {})


PAGES = [
    ROOT / "README.md",
    ROOT / "CONTRIBUTING.md",
    ROOT / "CHANGELOG.md",
    ROOT / "benchmarks" / "RESULTS.md",
    *sorted(DOCS.glob("*.md")),
]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_in_the_repository(page):
    """A Markdown link to a file of the repository names a file that exists, from
    the page's own folder (as GitHub resolves it); the site build resolves the same
    links with -W and no cross-reference warning suppressed."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor of the page
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert broken == []


def test_no_cross_reference_warning_is_suppressed():
    conf = (DOCS / "conf.py").read_text()
    assert "xref_missing" not in conf


@pytest.mark.slow
def test_signatures_name_optaxs_type_aliases_not_their_unions(html):
    """`learning_rate` reads as optax.ScalarOrSchedule, as optax's own docs show it,
    not as the union it stands for (bool twice, over two lines)."""
    for name in ("inna", "innaprop"):
        page = (html / "api" / "generated" / f"inna_optax.{name}.html").read_text()
        text = re.sub(r"<[^>]+>", "", page)
        assert "optax.ScalarOrSchedule" in text and "ndarray | bool" not in text, name


@pytest.mark.slow
def test_api_pages_render_docstring_math_and_the_sidebar_shows_whole_names(html):
    """The docstrings' :math: reaches the API pages as MathJax with no ASCII left
    beside it, and the sidebar's entries are the names as the API page lists them:
    the full ones ("inna_optax.inverse_power_decay") broke mid-word at 1400 px."""
    page = (html / "api" / "generated" / "inna_optax.scale_by_inna.html").read_text()
    assert r'<span class="math notranslate nohighlight">\(\gamma_k\)</span>' in page
    assert r"\theta_{k+1} - \theta_k &amp;= \gamma_k" in page  # the (b) line's block
    outside = re.sub(r'<(span|div) class="math[^"]*">.*?</\1>', "", page, flags=re.S)
    assert not re.findall(r"gamma_k|theta_k|psi_k", outside)
    sidebar = page[page.index("bd-sidenav") :]
    sidebar = sidebar[: sidebar.index("</nav>")]
    names = re.findall(r'<a class="[^"]*reference internal[^"]*" href="[^"]*">([^<]*)</a>', sidebar)
    assert "scale_by_inna" in names and "devices.mesh_for" in names, names
    assert max(len(n) for n in names if " " not in n) <= 26, names
    css = (html / "_static" / "custom.css").read_text()
    assert "dl.field-list > dd" in css and 'mjx-container[display="true"]' in css


# Greek letters, roots and subscripted symbols written as ASCII: in a docstring they
# belong in a :math: role or a .. math:: block, which the API pages render.
ASCII_MATH = re.compile(
    r"\b(alpha|beta|gamma|theta|psi|lambda|sigma|mu|omega|sqrt|exp)\b"
    r"|\b(gamma|theta|psi|v|g|u|D|L|E)_(\{|[0-9k]\b|hat\b)"
    r"|\^[-0-9({]"
)


def _prose_of(doc: str) -> str:
    """A docstring less what may spell mathematics in ASCII: math roles and blocks,
    literals, doctest examples, the references and each argument's own name."""
    out, block = [], None  # block: the indent of the `.. math::` being skipped
    for line in doc.splitlines():
        indent, stripped = len(line) - len(line.lstrip()), line.strip()
        if block is not None and (not stripped or indent > block):
            continue
        block = None
        if stripped.startswith(".. math::"):
            block = indent
        elif stripped == "References:":
            break
        elif not stripped.startswith((">>>", "...")):  # a doctest's output stays: values
            out.append(re.sub(r"^\s*\w+: ", " ", line))
    prose = re.sub(r":math:`[^`]*`", " ", "\n".join(out))
    prose = re.sub(r"``[^`]*``|`[^`]*`_?", " ", prose)
    return prose


def _public_docstrings():
    for name in inna_optax.__all__:
        obj = getattr(inna_optax, name)
        yield name, inspect.getdoc(obj)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and inspect.getdoc(member):
                    yield f"{name}.{attr}", inspect.getdoc(member)


def test_public_docstrings_write_their_mathematics_as_math():
    found = {
        name: sorted({m.group(0) for m in ASCII_MATH.finditer(_prose_of(doc))})
        for name, doc in _public_docstrings()
    }
    found = {name: hits for name, hits in found.items() if hits}
    assert not found, f"ASCII mathematics outside :math: in {found}"
