"""The one table of published results the course quotes: paper, data, split, metric, value and
where the number is printed; and why two sources may print different numbers for one model."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    """One published number, as its source prints it (COCO scores times 100, accuracies in %); a
    dash for an encoder the course has not confirmed from the source."""

    model: str
    encoder: str
    dataset: str
    split: str
    metric: str
    value: str  # as printed by the source, e.g. "25.0" or "23.90"
    source: str
    note: str = ""


NIC = "Show and Tell, NIC (Vinyals et al., CVPR 2015)"
SOFT = "Show, Attend and Tell, soft attention (Xu et al., ICML 2015)"
HARD = "Show, Attend and Tell, hard attention (Xu et al., ICML 2015)"
REPRO = "Show, Attend and Tell, a PyTorch reproduction (soft, beam 3)"
XU_TABLE = "Xu et al. 2015, Table 1"
LRCN = "Donahue et al. 2015 (LRCN), Table 1"
S2VT = "Venugopalan et al. 2015 (S2VT), Table 2"

PUBLISHED: tuple[Published, ...] = (
    Published(
        NIC,
        "GoogLeNet",
        "COCO",
        "the NIC paper's test set",
        "BLEU-4",
        "27.7",
        "Vinyals et al. 2015, abstract and results table",
    ),
    Published(
        NIC,
        "GoogLeNet",
        "COCO",
        "the NIC paper's test set",
        "METEOR",
        "23.7",
        "Vinyals et al. 2015, results table",
    ),
    Published(
        NIC,
        "GoogLeNet",
        "COCO",
        "as listed by Xu et al.",
        "BLEU-4",
        "24.6",
        XU_TABLE,
        "NIC's row in Xu et al.'s comparison",
    ),
    Published(SOFT, "VGG-19, 14x14", "COCO", "Xu et al.'s test split", "BLEU-1", "70.7", XU_TABLE),
    Published(SOFT, "VGG-19, 14x14", "COCO", "Xu et al.'s test split", "BLEU-4", "24.3", XU_TABLE),
    Published(SOFT, "VGG-19, 14x14", "COCO", "Xu et al.'s test split", "METEOR", "23.90", XU_TABLE),
    Published(HARD, "VGG-19, 14x14", "COCO", "Xu et al.'s test split", "BLEU-1", "71.8", XU_TABLE),
    Published(HARD, "VGG-19, 14x14", "COCO", "Xu et al.'s test split", "BLEU-4", "25.0", XU_TABLE),
    Published(HARD, "VGG-19, 14x14", "COCO", "Xu et al.'s test split", "METEOR", "23.04", XU_TABLE),
    Published(
        REPRO,
        "ResNet-101, 14x14, fine-tuned",
        "COCO",
        "Karpathy's test split",
        "BLEU-4",
        "33.06",
        "sgrvinod/a-PyTorch-Tutorial-to-Image-Captioning, README",
        "NLTK's corpus_bleu, not the COCO scorer",
    ),
    Published("single-frame CNN (RGB frames)", "-", "UCF101", "split 1", "accuracy", "67.4", LRCN),
    Published("LRCN (RGB frames)", "-", "UCF101", "split 1", "accuracy", "68.2", LRCN),
    Published("LRCN (optical flow)", "-", "UCF101", "split 1", "accuracy", "77.3", LRCN),
    Published("LRCN (RGB and flow)", "-", "UCF101", "split 1", "accuracy", "82.9", LRCN),
    Published("S2VT (RGB frames)", "VGG", "MSVD", "test", "METEOR", "29.2", S2VT),
    Published(
        "S2VT (RGB and flow)", "VGG + AlexNet (flow)", "MSVD", "test", "METEOR", "29.8", S2VT
    ),
)

# Where two sources print different numbers for one model and metric: why.
WHY_THEY_DIFFER = {
    (NIC, "BLEU-4"): (
        "27.7 is what the NIC paper reports for its own model on its own COCO test set; 24.6 is "
        "the row Xu et al. give NIC in their comparison table, an evaluation of NIC that they "
        "list beside their own. In 2015 papers did not yet share one test split, so both numbers "
        "are right for what each source measured, and neither is comparable with the other."
    ),
}


def published_rows(
    models: Iterable[str] | None = None,
    datasets: Iterable[str] | None = None,
    metrics: Iterable[str] | None = None,
) -> list[Published]:
    """The rows of the table, optionally only some models, datasets or metrics."""
    keep = [set(v) if v is not None else None for v in (models, datasets, metrics)]
    return [
        row
        for row in PUBLISHED
        if all(
            k is None or value in k
            for k, value in zip(keep, (row.model, row.dataset, row.metric), strict=True)
        )
    ]


def published_table(rows: Iterable[Published]) -> str:
    """Rows as a markdown table, followed by the reason wherever one model and metric appear with
    two different values."""
    rows = list(rows)
    lines = [
        "| model (published) | encoder | data, split | metric | value | source |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        note = f" ({r.note})" if r.note else ""
        lines.append(
            f"| {r.model} | {r.encoder} | {r.dataset}, {r.split} | {r.metric}{note} | "
            f"{r.value} | {r.source} |"
        )
    shown = {(r.model, r.metric) for r in rows}
    for key, why in WHY_THEY_DIFFER.items():
        if key in shown and len({r.value for r in rows if (r.model, r.metric) == key}) > 1:
            lines += ["", f"Why {key[0]} has two {key[1]} values: {why}"]
    return "\n".join(lines)
