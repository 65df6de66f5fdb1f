"""Sphinx configuration of the inna-optax documentation.

Build (offline, warnings as errors), from the repository root:

    sphinx-build -W --keep-going -b html docs docs/_build/html

The notebooks of ../notebooks are copied in and executed in their small mode
(INNA_NOTEBOOK_SMALL=1); INNA_DOCS_EXECUTE=0 renders them without running them.
The flags table of the training page is generated from `inna_optax.training.Config`.
"""

import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import inna_optax  # noqa: E402
from inna_optax.training.flags import flags_table  # noqa: E402


# -- Generated pages ---------------------------------------------------------
def _write(path: Path, data: bytes) -> None:
    """Writes `path` only when its bytes change, atomically (builds may run side by
    side, as in the test suite)."""
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


for folder in ("_generated", "notebooks"):
    (HERE / folder).mkdir(exist_ok=True)
_write(HERE / "_generated" / "flags.md", flags_table().encode())
for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
    _write(HERE / "notebooks" / notebook.name, notebook.read_bytes())
os.environ["INNA_NOTEBOOK_SMALL"] = "1"  # the notebooks' small mode, for their kernels

# -- Project -------------------------------------------------------------------
project = "inna-optax"
author = "the inna-optax authors"
copyright = "2026, the inna-optax authors"  # noqa: A001
release = inna_optax.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served from the site itself: it renders offline
    "sphinx.ext.viewcode",
    "myst_nb",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# -- autodoc -------------------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # NamedTuple fields: one description, not two
# intersphinx to jax, optax and flax needs their inventories from the network; the
# builds here are offline, so names of those libraries are left as plain text.
nitpicky = False

# -- MyST and notebooks --------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "force" if os.environ.get("INNA_DOCS_EXECUTE", "1") == "1" else "off"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_merge_streams = True
suppress_warnings = ["mystnb.unknown_mime_type"]
# quotes and ellipses made typographic, dashes left alone: "--steps" in a help text or
# a docstring stays two hyphens instead of becoming an en dash
smartquotes_action = "qe"


def _notebook_links(app, docname, source):
    """The pages link the notebooks where they are in the repository
    (``../notebooks/x.ipynb``, right on GitHub); the site has its copies in
    ``notebooks/`` (above), so the links are pointed there while the site builds."""
    source[0] = source[0].replace("](../notebooks/", "](notebooks/")


_BACKLINK = re.compile(r'href="([^"]*api/generated/)([\w.]+)\.html#([\w.]+)"')


def _viewcode_backlinks(app, pagename, templatename, context, doctree):
    """The "[docs]" links of the source pages: viewcode writes each object's anchor
    with the module path under which the first object of its source file was
    documented (``inna_optax.training.data.prepare``, while ``prepare`` is documented
    as ``inna_optax.training.prepare``); an API page's object anchor is its page's
    name, so each link is pointed there."""
    if not pagename.startswith("_modules/") or "body" not in context:
        return

    def fix(match):
        folder, page, anchor = match.groups()
        if not anchor.startswith(page):
            name = page.rsplit(".", 1)[-1]
            head, sep, tail = anchor.rpartition(f".{name}")
            anchor = page + tail if sep else anchor
        return f'href="{folder}{page}.html#{anchor}"'

    context["body"] = _BACKLINK.sub(fix, context["body"])


def _type_aliases(app, objtype, name, obj, options, signature, return_annotation):
    """optax's own alias for what a parameter's type is (`optax.ScalarOrSchedule`),
    as optax's docs show it, instead of the union it stands for. The annotations are
    real types at run time (a test holds it), so `autodoc_type_aliases`, which reads
    annotations written as strings, cannot do it: the types autodoc recorded for the
    Parameters list are renamed here, after it recorded them."""
    import optax
    from sphinx.util.typing import stringify_annotation

    union = stringify_annotation(optax.ScalarOrSchedule, "smart")
    recorded = app.env.current_document.autodoc_annotations.get(name, {})
    for key, value in recorded.items():
        if value == union:
            recorded[key] = "optax.ScalarOrSchedule"


def setup(app):
    app.connect("autodoc-process-signature", _type_aliases, priority=600)
    app.connect("source-read", _notebook_links)
    app.connect("html-page-context", _viewcode_backlinks)


# -- HTML ----------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "inna-optax"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "home_page_in_toc": True,
}
# the theme's sidebar without its search field: the header's search box is the one
html_sidebars = {"**": ["navbar-logo.html", "icon-links.html", "sbt-sidebar-nav.html"]}
