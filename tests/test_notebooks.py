"""The notebooks run headless, top to bottom, in a real kernel, on the tiny configuration, and are
committed without outputs."""

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def test_the_three_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == ["01_quickstart", "02_data_and_augmentations", "03_evaluate_and_analyse"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear the outputs"
    source = "\n".join(cell.source for cell in nb.cells)
    assert "import accel_slowfast" not in source.replace("from ", "")
    # the set-up is the package's (accel_slowfast/notebook.py, which the tests share), not a copied cell
    assert "from accel_slowfast.notebook import make_recipe" in nb.cells[1].source and "def " not in nb.cells[1].source


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    # The kernel inherits the environment: the tiny configuration, outputs under tmp_path, and
    # conftest's throw-away ACCEL_SLOWFAST_CACHE for the generated dataset.
    monkeypatch.setenv("ACCEL_SLOWFAST_NB_TINY", "1")
    monkeypatch.setenv("ACCEL_SLOWFAST_NB_WORK_DIRS", str(tmp_path / "work_dirs"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("ACCEL_SLOWFAST_NB_CHECKPOINT", raising=False)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out.output_type == "error"]
    assert not errors
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not any("IProgress not found" in out.get("text", "") for out in outputs)  # tqdm without ipywidgets
    written = {"01_quickstart": ["quickstart/metrics.jsonl", "quickstart/exported/model.safetensors"],
               "03_evaluate_and_analyse": ["evaluate/test_metrics.json", "evaluate/test_predictions.csv"]}
    for name in written.get(path.stem, []):
        assert (tmp_path / "work_dirs" / name).exists(), f"{path.name} did not write {name}"
    if path.stem in written:  # they train: the progress bar is a widget, not text
        assert any("application/vnd.jupyter.widget-view+json" in out.get("data", {}) for out in outputs)
    for cell in nb.cells:  # a training cell shows the widget and the run's summary, not the log's ~60 records
        if cell.cell_type == "code" and "train(recipe)" in cell.source:
            text = "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")
            assert "Epoch [" not in text and "Hooks" not in text and "Finished" in text, text
            assert len(text.splitlines()) <= 15, text


@pytest.mark.slow
def test_the_notebook_command_of_a_fresh_dev_install_runs(tmp_path):
    """As a user runs it after pip install -e '.[dev]' (nbconvert was in no extra)."""
    import os
    import subprocess

    env = dict(os.environ, ACCEL_SLOWFAST_NB_TINY="1", ACCEL_SLOWFAST_NB_WORK_DIRS=str(tmp_path / "work_dirs"),
               MPLBACKEND="Agg")
    result = subprocess.run(["jupyter", "nbconvert", "--to", "notebook", "--execute", str(NOTEBOOKS[0]),
                             "--output-dir", str(tmp_path)], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / NOTEBOOKS[0].name).exists()
    assert (tmp_path / "work_dirs" / "quickstart" / "metrics.jsonl").exists()
