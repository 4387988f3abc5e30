"""Judging what video models say: actions against each clip's label (confusion matrix), captions
with the COCO metrics and, on the tiny video set, against what each shape really does."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

from helpers.data.tiny_video import ACTIONS, COLORS, Actor
from helpers.data.video import VideoItem, action_label
from helpers.data.vocabulary import tokenize
from helpers.evaluate.objects import parse_objects
from helpers.evaluate.references import against_others


def _phrases() -> list[tuple[list[str], str]]:
    """Every way the tiny video's captions say an action, as tokens, longest first; a recolour's
    new colour stands as "{new}"."""
    found = [
        (text.split(), action) for action, (said, ing) in ACTIONS.items() for text in (*said, ing)
    ]
    return sorted(found, key=lambda f: -len(f[0]))


PHRASES = _phrases()


def _action(tokens: list[str]) -> str | None:
    """The first action the tokens say ("recolor blue" for "turns blue"), or None."""
    for start in range(len(tokens)):
        for words, action in PHRASES:
            window = tokens[start : start + len(words)]
            if len(window) < len(words):
                continue
            if all(
                w == t or (w == "{new}" and t in COLORS) for w, t in zip(words, window, strict=True)
            ):
                return f"{action} {window[words.index('{new}')]}" if "{new}" in words else action
    return None


def said_actors(caption: str) -> Counter:
    """The objects a video caption names, each with its colour, shape and what the words after
    its name say it does: a multiset of (colour, shape, action)."""
    tokens = tokenize(caption)
    mentions = parse_objects(tokens)
    said: Counter = Counter()
    for k, m in enumerate(mentions):
        end = mentions[k + 1].color_at if k + 1 < len(mentions) else len(tokens)
        if k + 1 < len(mentions) and end < 0:
            end = mentions[k + 1].shape_at
        said[(m.color, m.shape, _action(tokens[m.shape_at + 1 : end]))] += m.count
    return said


def true_actors(actors: list[Actor] | list[dict]) -> Counter:
    """What a clip shows, as a multiset of (colour, shape, action)."""
    actors = [a if isinstance(a, Actor) else Actor(**a) for a in actors]
    return Counter(
        (a.color, a.shape, f"recolor {a.new_color}" if a.action == "recolor" else a.action)
        for a in actors
    )


def actor_scores(caption: str, actors: list[Actor] | list[dict]) -> dict[str, bool]:
    """Whether a caption names the right objects (colour and shape), the right actions, and each
    object with its own action (both, bound)."""
    said, shown = said_actors(caption), true_actors(actors)

    def part(counts: Counter, keep: slice) -> Counter:
        out: Counter = Counter()
        for key, n in counts.items():
            out[key[keep]] += n
        return out

    return {
        "objects": part(said, slice(0, 2)) == part(shown, slice(0, 2)),
        "actions": part(said, slice(2, 3)) == part(shown, slice(2, 3)),
        "both": said == shown,
    }


def caption_is_right(caption: str, actors: list[Actor] | list[dict]) -> bool:
    """Whether a caption names every actor (colour and shape) and, after its name, what it does
    (extra words are not checked; actor_scores compares the whole caption object by object)."""
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
        said, ing = ACTIONS[a.action]
        if not any(t.format(new=a.new_color) in text[at:end] for t in (*said, ing)):
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
    `captions`: the humans' own, each clip's first); and on the tiny set, object by object: the
    share naming the right objects, the right actions, and each object with its own action
    ("right"), over all clips and for one- and two-actor clips."""
    refs = {k: item.captions for k, item in enumerate(items)}
    scores = against_others(
        refs, None if captions is None else dict(enumerate(captions)), skip=skip
    ).scores
    said = captions if captions is not None else [item.captions[0] for item in items]
    report = {"metrics": {k: round(v, 3) for k, v in scores.items()}, "clips": len(items)}
    if all(item.actions for item in items):
        pairs = list(zip(items, said, strict=True))
        groups = {"": (1, 2), ", one actor": (1,), ", two actors": (2,)}
        for suffix, counts in groups.items():
            rows = [(item, text) for item, text in pairs if len(item.actions) in counts]
            if not rows:
                continue
            right = sum(caption_is_right(text, item.actions) for item, text in rows)
            report[f"right{suffix}"] = round(right / len(rows), 3)
            scores = [actor_scores(text, item.actions) for item, text in rows]
            for what in ("objects", "actions", "both"):
                report[f"{what} right{suffix}"] = round(sum(r[what] for r in scores) / len(rows), 3)
    return report
