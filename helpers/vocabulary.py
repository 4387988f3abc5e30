"""Words to ids and back: tokenize, the Vocabulary class (saved as JSON), build_vocabulary."""

from __future__ import annotations

import argparse
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import nltk
from tqdm import tqdm

from helpers.annotations import load_captions
from helpers.datasets import data_dir, dataset_split
from helpers.errors import CourseError, run_cli
from helpers.files import read_json, write_json

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)
FORMAT = "captioning-course vocabulary"


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; preserve_line=True skips sentence splitting, so no punkt download."""
    return nltk.word_tokenize(text.lower().strip(), preserve_line=True)


class Vocabulary:
    """A two-way map between words and ids; ids 0-3 are <pad>, <start>, <end>, <unk>."""

    def __init__(self, words: Iterable[str] = ()) -> None:
        self.word_to_id: dict[str, int] = {}
        self.id_to_word: list[str] = []
        self.counts: dict[str, int] = {}
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
        write_json(
            path, {"format": FORMAT, "word_to_id": self.word_to_id, "counts": self.counts}, indent=0
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Read a vocabulary JSON, checking the ids are 0..n-1, unique, with the four specials first."""
        path = Path(path)
        data = read_json(path, "vocabulary file")
        mapping = data.get("word_to_id") if isinstance(data, dict) else None
        if not isinstance(mapping, dict) or not all(isinstance(i, int) for i in mapping.values()):
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
        vocab = cls(words[4:])
        vocab.counts = {str(k): int(v) for k, v in (data.get("counts") or {}).items()}
        return vocab


def count_words(annotations: str | os.PathLike, progress: bool = True) -> Counter:
    """How often each token occurs in the captions of a COCO captions file."""
    anns = load_captions(annotations)["annotations"]
    counter: Counter = Counter()
    for ann in tqdm(
        anns, desc="tokenizing captions", unit="caption", disable=not progress, mininterval=0.5
    ):
        counter.update(tokenize(ann["caption"]))
    return counter


def build_vocabulary(
    annotations: str | os.PathLike, threshold: int = 4, progress: bool = True
) -> Vocabulary:
    """Keep the words that occur at least `threshold` times, most frequent first."""
    counter = count_words(annotations, progress)
    kept = [w for w, c in sorted(counter.items(), key=lambda wc: (-wc[1], wc[0])) if c >= threshold]
    vocab = Vocabulary(kept)
    vocab.counts = dict(counter)
    return vocab


def ensure_vocabulary(
    dataset: str = "tiny", threshold: int = 4, path: str | os.PathLike | None = None
) -> Vocabulary:
    """Load the vocabulary of a dataset's train captions, building and saving it when missing."""
    if path is None:
        name = dataset if dataset in ("tiny", "coco2014") else Path(dataset).name
        path = data_dir() / f"vocab_{name}_t{threshold}.json"
    if Path(path).is_file():
        return Vocabulary.load(path)
    vocab = build_vocabulary(dataset_split(dataset, "train").annotations, threshold)
    vocab.save(path)
    return vocab


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m helpers.vocabulary", description=__doc__)
    p.add_argument(
        "--annotations", type=Path, required=True, help="COCO captions JSON (train split)"
    )
    p.add_argument("--threshold", type=int, default=4, help="keep words seen at least this often")
    p.add_argument("--out", type=Path, required=True, help="where to write the vocabulary JSON")
    args = p.parse_args(argv)
    vocab = build_vocabulary(args.annotations, args.threshold)
    vocab.save(args.out)
    print(f"{len(vocab)} words (threshold {args.threshold}) saved to {args.out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
