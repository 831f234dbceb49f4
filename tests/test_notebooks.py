"""The notebooks in notebooks/ run from top to bottom without an error, on this environment's Python.

Each is executed in a temporary copy (its own working folder), against the servers it starts on
127.0.0.1 and the SQLite database it makes in a temporary folder.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
#: generous: each notebook takes a few seconds
CELL_TIMEOUT = 120


def execute(notebook: nbformat.NotebookNode, folder: Path) -> nbformat.NotebookNode:
    """Run every cell on the ``python3`` kernel in ``folder``; raises at the first failing cell."""
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(folder)}}
    )
    return client.execute()


def test_there_are_notebooks_and_they_are_committed_with_their_outputs():
    assert len(NOTEBOOKS) >= 3
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert code and all(cell.execution_count is not None for cell in code), f"{path.name} was not executed"
        assert any(cell.outputs for cell in code), f"{path.name} has no outputs"
        assert not [o for cell in code for o in cell.outputs if o.output_type == "error"], f"{path.name} has errors"


def test_the_kernel_is_this_environments_python(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("import sys, pendingops\nprint(sys.executable)"))
    execute(notebook, tmp_path)
    assert notebook.cells[0].outputs[0].text.strip() == sys.executable


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_without_error(path, tmp_path):
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    notebook = nbformat.read(copy, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    execute(notebook, tmp_path)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code)
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert not list(tmp_path.glob("pendingops*")), "the notebook left files in its working folder"
