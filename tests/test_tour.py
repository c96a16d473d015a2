"""docs/tour.ipynb runs headless from top to bottom, as a learner runs it."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

TOUR = Path(__file__).resolve().parent.parent / "docs" / "tour.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The tour executed in a fresh Jupyter kernel, from an empty folder."""
    if not TOUR.exists():
        pytest.fail(f"{TOUR} is missing")
    notebook = nbformat.read(TOUR, as_version=4)
    folder = tmp_path_factory.mktemp("tour")
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}}
                            ).execute()
    return notebook


def outputs(cell):
    return cell.get("outputs", [])


def text(cell):
    return "".join(o.get("text", "") for o in outputs(cell)
                   if o["output_type"] == "stream")


def test_every_cell_runs_without_an_error(executed):
    for cell in executed.cells:
        assert not any(o["output_type"] == "error" for o in outputs(cell))


def test_figures_left_at_the_end_of_a_cell_render_as_png(executed):
    figure_cells = [c for c in executed.cells if c.cell_type == "code"
                    and c.source.startswith("mf.plot.")]
    assert len(figure_cells) == 5
    for cell in figure_cells:
        results = [o for o in outputs(cell)
                   if o["output_type"] == "execute_result"]
        assert len(results) == 1 and "image/png" in results[0]["data"], cell.source


def test_training_prints_the_books_lines_and_the_check_passes(executed):
    everything = "".join(text(c) for c in executed.cells)
    assert everything.count("train acc, test acc | ") == 17
    assert "train acc, test acc | 0.9481166666666667, 0.9468" in everything
    assert everything.count("PASS") == 4 and "FAIL" not in everything
    assert "label 7, read as 7" in everything
