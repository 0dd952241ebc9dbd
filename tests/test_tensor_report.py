"""The tensor report compiles for the seed course's convnet and for an attention net, with no
line off the page, and prints each rule's derivation steps."""

import shutil

import pytest

from derive import network
from derive.layers import AvgPool2D, Conv2D, Dense, Flatten, MeanOverTime, SelfAttention
from numeric.verification.tensor_check import load_model
from reports.latex.pdflatex import problems
from reports.tensor_report import report_tex, write_tensor_report

pytestmark = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex")


def test_convnet_report_compiles_with_every_step(tmp_path):
    model = load_model("examples/mnist_convnet.py")
    pdf = write_tensor_report(model, tmp_path / "convnet")
    assert pdf.stat().st_size > 10_000
    assert problems(pdf.with_suffix(".log").read_text()) == []
    tex = pdf.with_suffix(".tex").read_text()
    for words in ("Convolution", "Pooling", "Flatten", "Dense", "delta", "dZ_{full}",
                  "receptive_field.pdf", "pool_gradient.pdf"):  # fmt: skip
        assert words in tex, words


def test_attention_and_average_pool_sections_appear():
    tex = report_tex(network((4, 3), [SelfAttention(2), MeanOverTime(), Dense(2)], "mse"))
    assert "Self-attention" in tex and "Mean over time" in tex and "rowsum" in tex
    tex = report_tex(network((4, 4, 1), [Conv2D(1, 2), AvgPool2D(2), Flatten(), Dense(2)], "mse"))
    assert "AvgPool2D" in tex


def test_backprop_report_on_the_model_file_writes_the_pdf(tmp_path, capsys):
    from reports.cli.main import main as backprop

    assert backprop(["report", "examples/mnist_convnet.py", "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "report.pdf").stat().st_size > 10_000
