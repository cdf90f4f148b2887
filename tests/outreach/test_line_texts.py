"""LINE texts once personalised (outreach.line_texts)."""

from __future__ import annotations

from outreach.line_texts import line_length_problem


def test_a_rendered_text_is_measured_as_line_counts_it_in_utf16_units():
    assert line_length_problem(["あ" * 5000, "😀" * 2500]) == ""  # both exactly 5,000
    problem = line_length_problem(["短い", "😀" * 2500 + "!"])  # an emoji counts 2
    assert problem.startswith("2通目のメッセージが差し込み後に5,001文字")
