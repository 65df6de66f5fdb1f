"""The notebooks run top to bottom, headless, at their small size; they are stored
without outputs, import the package, and are linked from the README."""

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # processes of their own: `-m "not slow"` skips them

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = [
    "01_quickstart.ipynb",
    "02_train_nin.ipynb",
    "03_hyperparameter_sweep.ipynb",
    "04_inna_innaprop_adamw.ipynb",
]


def test_notebooks_present_stripped_and_linked():
    assert [p.name for p in NOTEBOOKS] == EXPECTED
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in readme
        assert path.stat().st_size < 1 << 20
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c["outputs"] and c["execution_count"] is None for c in code)
        source = "\n".join("".join(c["source"]) for c in code)
        assert "INNA_NOTEBOOK_SMALL" in source
        assert "import inna_optax" in source or "from inna_optax" in source
        # The optimizer comes from the package, never re-implemented in a notebook.
        assert "theta_minus_psi" not in source and "def scale_by_inna" not in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("INNA_NOTEBOOK_SMALL", "1")
    monkeypatch.delenv("INNA_DATA_DIR", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # keep the inline backend: figures are outputs
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "every notebook draws at least one figure"
