"""The results contract helpers: cell ids, parsing CSV cells back, numbers from any cell."""

import math

import pytest

from harness.results import as_number, cell_id, parse_value


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2, 2.0), ("2.5", 2.5), (1e9, 1e9), (None, None), ("", None), ("x", None)],
)
def test_as_number(value, expected):
    assert as_number(value) == expected


def test_as_number_refuses_nan_and_bools():
    assert as_number(math.nan) is None
    assert as_number(True) is None


def test_parse_value_keeps_text_columns_as_text():
    assert parse_value("model", "1") == "1"
    assert parse_value("batch", "8") == 8
    assert parse_value("latency_ms_p50", "3.5") == 3.5
    assert parse_value("reason", "") is None


def test_cell_id():
    cell = {"model": "mobilenet_v2", "width": 1.0, "resolution": 224, "backend": "onnxruntime"}
    cell |= {"mode": "cpu", "precision": "fp32", "batch": 1, "threads": 2}
    assert cell_id(cell) == "mobilenet_v2/w1/r224/onnxruntime/cpu/fp32/b1/t2"
