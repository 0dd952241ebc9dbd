"""The teaching example runs, and its notebook is the script's cells."""

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_example_script_teaches_both_classics_and_writes_their_reports(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES.parent)}
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "two_classics.py"), "-o", str(tmp_path), "--no-pdf"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert r"\sigma'(z^{(3)}) 2 (a^{(3)} - y)" in run.stdout  # 3Blue1Brown's formula
    assert run.stdout.count(r"z^{(1)} &= w^{(1)} \, a^{(0)} + b^{(1)}") == 1  # forward pass once
    assert r"dZ^{[2]} &= " in run.stdout and r"\frac{A^{[2]} - Y}{m}" in run.stdout  # Ng's
    assert (tmp_path / "3b1b_chain" / "report.tex").exists()
    assert (tmp_path / "ng_two_layer" / "report.tex").exists()


def test_notebook_holds_the_cells_of_the_script():
    sys.path.insert(0, str(EXAMPLES))
    try:
        from make_notebook import notebook
    finally:
        sys.path.remove(str(EXAMPLES))
    saved = json.loads((EXAMPLES / "two_classics.ipynb").read_text())
    assert saved["cells"] == notebook(EXAMPLES / "two_classics.py")["cells"]
    ids = [cell.get("id") for cell in saved["cells"]]
    assert all(ids) and len(set(ids)) == len(ids)  # nbformat 4.5 requires cell ids
