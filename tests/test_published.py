"""The one table of published results: every row sourced, filters, and the reason shown wherever a
model has two values for one metric."""

from __future__ import annotations

from helpers.evaluate.published import (
    NIC,
    PUBLISHED,
    WHY_THEY_DIFFER,
    published_rows,
    published_table,
)


def test_every_published_row_names_its_source_and_data():
    for row in PUBLISHED:
        assert row.source and row.dataset and row.split and row.metric and float(row.value) > 0, row
    assert len({(r.model, r.dataset, r.split, r.metric) for r in PUBLISHED}) == len(PUBLISHED)


def test_two_values_for_one_model_and_metric_come_with_the_reason():
    pairs = {}
    for r in PUBLISHED:
        pairs.setdefault((r.model, r.metric), set()).add(r.value)
    differing = {k for k, values in pairs.items() if len(values) > 1}
    assert differing == set(WHY_THEY_DIFFER)
    table = published_table(published_rows(models=[NIC], metrics=["BLEU-4"]))
    assert (
        "| 27.7 |" in table and "| 24.6 |" in table and "| 25.0 |" not in table and "Why " in table
    )
    assert "Why " not in published_table(published_rows(models=[NIC], metrics=["METEOR"]))


def test_the_table_filters_by_data():
    video = published_rows(datasets=["UCF101", "MSVD"])
    assert video and all(r.dataset in ("UCF101", "MSVD") for r in video)
    lines = published_table(video).splitlines()
    assert len(lines) == 2 + len(video) and lines[0].startswith("| model (published) |")
