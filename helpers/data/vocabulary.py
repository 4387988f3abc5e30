"""Words to ids and back: tokenize, the Vocabulary class (saved as JSON), build_vocabulary."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import nltk
from tqdm import tqdm

from helpers.checks import arg, parser, positive, warn, writable_file
from helpers.data.annotations import load_captions
from helpers.data.paths import data_dir
from helpers.data.registry import Dataset, dataset_name, resolve_dataset
from helpers.data.tiny_video import ACTIONS
from helpers.data.video import VideoItem, action_label, split_captions
from helpers.errors import CourseError, run_cli
from helpers.files import file_digest, read_json, write_json

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)
FORMAT = "captioning-course vocabulary"


# A period after a word and before a space ends a sentence inside a caption ("A dog. A cat.").
_INNER_PERIOD = re.compile(r"(?<=\w)\.(?=[\s)\]}\"'])")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; preserve_line=True skips sentence splitting, so no punkt download."""
    # Without sentence splitting the treebank tokenizer separates only the caption's last period,
    # so a period that ends an inner sentence is split off here ("dog." would be one rare word).
    text = _INNER_PERIOD.sub(" .", text.lower().strip())
    return nltk.word_tokenize(text, preserve_line=True)


class Vocabulary:
    """A two-way map between words and ids; ids 0-3 are <pad>, <start>, <end>, <unk>."""

    def __init__(self, words: Iterable[str] = ()) -> None:
        self.word_to_id: dict[str, int] = {}
        self.id_to_word: list[str] = []
        self.counts: dict[str, int] = {}
        self.source_sha256: str | None = None  # of the captions file it was built from
        for word in (*SPECIALS, *words):
            self.add_word(word)

    def add_word(self, word: str) -> int:
        """Add `word` if new; return its id."""
        if word not in self.word_to_id:
            self.word_to_id[word] = len(self.id_to_word)
            self.id_to_word.append(word)
        return self.word_to_id[word]

    def __call__(self, word: str) -> int:
        return self.word_to_id.get(word, self.word_to_id[UNK])

    def __len__(self) -> int:
        return len(self.id_to_word)

    def __contains__(self, word: str) -> bool:
        return word in self.word_to_id

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} words)"

    def encode(self, caption: str) -> list[int]:
        """Token ids of a caption, wrapped in <start> ... <end>; unknown words become <unk>."""
        return [self.word_to_id[START], *(self(t) for t in tokenize(caption)), self.word_to_id[END]]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words of a sequence of ids, skipping <start> and <pad> and stopping at <end>."""
        words = []
        for i in ids:
            word = self.id_to_word[int(i)]
            if word == END:
                break
            if word not in (START, PAD):
                words.append(word)
        return words

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON (atomically; no pickle)."""
        data = {"format": FORMAT, "word_to_id": self.word_to_id, "counts": self.counts}
        write_json(path, {**data, "source_sha256": self.source_sha256}, indent=0)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Read a vocabulary JSON, checking the ids are 0..n-1, unique, with the four specials first."""
        path = Path(path)
        data = read_json(path, "vocabulary file")
        mapping = data.get("word_to_id") if isinstance(data, dict) else None
        if not isinstance(mapping, dict) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in mapping.values()
        ):
            raise CourseError(
                f"{path}: not a vocabulary file (needs a 'word_to_id' object of word: id)"
            )
        ids = sorted(mapping.values())
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise CourseError(
                f"{path}: vocabulary has duplicate ids (id {dup} is used more than once)"
            )
        if ids != list(range(len(ids))):
            raise CourseError(f"{path}: vocabulary ids must be 0..{len(ids) - 1} without gaps")
        words = sorted(mapping, key=mapping.get)
        if tuple(words[:4]) != SPECIALS:
            raise CourseError(f"{path}: vocabulary ids 0-3 must be {', '.join(SPECIALS)}")
        counts = data.get("counts") or {}
        if not isinstance(counts, dict) or not all(
            isinstance(c, int) and not isinstance(c, bool) for c in counts.values()
        ):
            raise CourseError(f"{path}: vocabulary 'counts' must be an object of word: count")
        vocab = cls(words[4:])
        vocab.counts = dict(counts)
        vocab.source_sha256 = data.get("source_sha256")
        return vocab


def count_words(
    annotations: str | os.PathLike, progress: bool = True, videos: str | None = None
) -> Counter:
    """How often each token occurs in the captions of a COCO captions file (or, with `videos`, of
    that split of an MSR-VTT file, which holds every split)."""
    if videos is None:
        texts = [ann["caption"] for ann in load_captions(annotations)["annotations"]]
    else:
        texts = split_captions(annotations, videos)
    counter: Counter = Counter()
    for text in tqdm(
        texts, desc="tokenizing captions", unit="caption", disable=not progress, mininterval=0.5
    ):
        counter.update(tokenize(text))
    return counter


def build_vocabulary(
    annotations: str | os.PathLike,
    threshold: int = 4,
    progress: bool = True,
    videos: str | None = None,
) -> Vocabulary:
    """Keep the words that occur at least `threshold` times, most frequent first."""
    positive("threshold", threshold)
    counter = count_words(annotations, progress, videos)
    kept = [w for w, c in sorted(counter.items(), key=lambda wc: (-wc[1], wc[0])) if c >= threshold]
    if not kept:
        warn(
            f"{annotations}: no word occurs {threshold} times; the vocabulary holds only "
            f"{', '.join(SPECIALS)} (try a lower threshold)"
        )
    vocab = Vocabulary(kept)
    vocab.counts = dict(counter)
    # Recorded so that ensure_vocabulary knows a saved vocabulary still matches its captions.
    vocab.source_sha256 = file_digest(annotations)
    return vocab


def vocabulary_path(dataset: str | os.PathLike | Dataset = "tiny", threshold: int = 4) -> Path:
    """The file ensure_vocabulary uses: data_dir/vocab_<dataset>_t<threshold>.json."""
    return data_dir() / f"vocab_{dataset_name(dataset)}_t{threshold}.json"


def ensure_vocabulary(
    dataset: str | os.PathLike | Dataset = "tiny",
    threshold: int = 4,
    path: str | os.PathLike | None = None,
    progress: bool = True,
) -> Vocabulary:
    """Load the vocabulary of a dataset's train captions, (re)building it when missing or stale."""
    path = vocabulary_path(dataset, threshold) if path is None else Path(path)
    annotations, videos = resolve_dataset(dataset).annotations("train")
    digest = file_digest(annotations)
    if path.is_file():
        vocab = Vocabulary.load(path)
        if vocab.source_sha256 == digest:
            return vocab
        print(f"{path.name}: its captions file changed since it was built; rebuilding")
    vocab = build_vocabulary(annotations, threshold, progress, videos)
    vocab.save(path)
    return vocab


def main(argv: list[str] | None = None) -> int:
    p = parser("python -m helpers.data.vocabulary", __doc__)
    p.add_argument(
        "--annotations", type=Path, required=True, help="COCO captions JSON (train split)"
    )
    p.add_argument(
        "--threshold", type=arg(positive), default=4, help="keep words seen at least this often"
    )
    p.add_argument("--out", type=Path, required=True, help="where to write the vocabulary JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    writable_file(args.out, inputs=[args.annotations])
    vocab = build_vocabulary(args.annotations, args.threshold, progress=not args.quiet)
    vocab.save(args.out)
    print(f"{len(vocab)} words (threshold {args.threshold}) saved to {args.out}")
    return 0


def action_vocabulary(items: list[VideoItem]) -> Vocabulary:
    """The action names of the one-actor clips, as the LRCN's output vocabulary (tiny set's order)."""
    names = {action_label(item) for item in items} - {None}
    order = {name: k for k, name in enumerate(ACTIONS)}
    return Vocabulary(sorted(names, key=lambda n: (order.get(n, len(order)), n)))


if __name__ == "__main__":
    run_cli(main)
