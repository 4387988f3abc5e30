"""Judging what video models say: actions against each clip's label (confusion matrix), captions
with the COCO metrics and, on the tiny video set, against what each shape really does."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from helpers.data.tiny_video import ACTIONS, Actor
from helpers.data.video import VideoItem, action_label
from helpers.evaluate.references import against_others


def _action_words(actor: Actor) -> list[str]:
    """Every way the captions say what an actor does."""
    said, ing = ACTIONS[actor.action]
    return [text.format(new=actor.new_color) for text in (*said, ing)]


def caption_is_right(caption: str, actors: list[Actor] | list[dict]) -> bool:
    """Whether a caption names every actor (colour and shape) and, after its name, what it does."""
    actors = [a if isinstance(a, Actor) else Actor(**a) for a in actors]
    text = " ".join(caption.lower().replace(",", " ").replace(".", " ").split())
    starts = []
    for a in actors:
        at = text.find(f"{a.color} {a.shape}")
        if at < 0:
            return False
        starts.append((at, a))
    starts.sort(key=lambda s: s[0])
    for k, (at, a) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(text)
        if not any(words in text[at:end] for words in _action_words(a)):
            return False
    return True


@dataclass
class ActionReport:
    """Accuracy of predicted actions on the clips that have one label, overall and per class."""

    classes: list[str]
    confusion: list[list[int]]  # row: the true action, column: the predicted one
    clips: int = 0
    per_class: dict[str, float] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        right = sum(self.confusion[k][k] for k in range(len(self.classes)))
        return right / self.clips if self.clips else float("nan")


def action_report(items: list[VideoItem], predicted: list[str], classes: list[str]) -> ActionReport:
    """The confusion matrix and accuracies of predictions against the clips' action labels."""
    index = {name: k for k, name in enumerate(classes)}
    confusion = [[0] * len(classes) for _ in classes]
    for item, guess in zip(items, predicted, strict=True):
        truth = action_label(item)
        if truth in index and guess in index:
            confusion[index[truth]][index[guess]] += 1
    per_class = {
        name: confusion[k][k] / sum(confusion[k])
        for k, name in enumerate(classes)
        if sum(confusion[k])
    }
    return ActionReport(classes, confusion, sum(map(sum, confusion)), per_class)


def caption_report(
    items: list[VideoItem], captions: list[str] | None = None, skip: Collection[str] = ("SPICE",)
) -> dict:
    """Captions of clips scored as the humans are, against each clip's captions but the first (no
    `captions`: the humans' own, each clip's first); and the share that name every object with
    what it does (tiny set), for one- and two-actor clips."""
    refs = {k: item.captions for k, item in enumerate(items)}
    scores = against_others(
        refs, None if captions is None else dict(enumerate(captions)), skip=skip
    ).scores
    said = captions if captions is not None else [item.captions[0] for item in items]
    report = {"metrics": {k: round(v, 3) for k, v in scores.items()}, "clips": len(items)}
    if all(item.actions for item in items):
        right = [
            caption_is_right(text, item.actions) for item, text in zip(items, said, strict=True)
        ]
        report["right"] = round(sum(right) / len(right), 3)
        for n, group in ((1, "one actor"), (2, "two actors")):
            hits = [r for r, item in zip(right, items, strict=True) if len(item.actions) == n]
            if hits:
                report[f"right, {group}"] = round(sum(hits) / len(hits), 3)
    return report
