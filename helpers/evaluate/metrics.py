"""The official COCO caption metrics (pycocoevalcap): BLEU-1..4, METEOR, ROUGE-L, CIDEr, SPICE.

Captions are tokenized as the COCO evaluation server does (Stanford's PTB tokenizer, lower-cased,
punctuation removed), then scored by pycocoevalcap's own scorers. The PTB tokenizer and METEOR
are Java programs; without Java, METEOR is skipped and BLEU, ROUGE-L and CIDEr are computed on the
output of `python_tokenize` instead, and labelled unofficial.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.data.vocabulary import tokenize
from helpers.errors import CourseError

# The names the COCO evaluation server prints, and the names people write in papers.
LABELS = {
    "Bleu_1": "BLEU-1",
    "Bleu_2": "BLEU-2",
    "Bleu_3": "BLEU-3",
    "Bleu_4": "BLEU-4",
    "METEOR": "METEOR",
    "ROUGE_L": "ROUGE-L",
    "CIDEr": "CIDEr",
    "SPICE": "SPICE",
}
SCORERS = ("BLEU", "METEOR", "ROUGE-L", "CIDEr", "SPICE")
# python_tokenize drops tokens made only of these, as pycocoevalcap drops PTB's punctuation.
_PUNCTUATION_CHARS = set(".?!,:;-'`\"()[]{}")


def find_java() -> str | None:
    """The `java` program on PATH, or None (tests replace this to take the no-Java path)."""
    return shutil.which("java")


@dataclass
class MetricsReport:
    """Metric values over a set of images, what was skipped and why, and how captions were tokenized."""

    scores: dict[str, float]
    n_images: int
    tokenizer: str  # "PTB" (official) or "python" (unofficial)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    per_image: dict[int, dict[str, float]] | None = None

    @property
    def official(self) -> bool:
        """True when the numbers are comparable with the COCO server's (PTB tokenizer)."""
        return self.tokenizer == "PTB"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        out = {
            "scores": self.scores,
            "official": self.official,
            "tokenizer": self.tokenizer,
            "n_images": self.n_images,
            "skipped": self.skipped,
            "notes": self.notes,
        }
        if self.per_image is not None:
            out["per_image"] = {str(k): v for k, v in self.per_image.items()}
        return out

    def __str__(self) -> str:
        return metrics_table(self)


def metrics_table(
    reports: MetricsReport | Mapping[str, MetricsReport], markdown: bool = False
) -> str:
    """A table of one report, or of several side by side (e.g. greedy, beam, human)."""
    if isinstance(reports, MetricsReport):
        reports = {"score": reports}
    names = list(reports)
    heads = [n if reports[n].official else f"{n} (unofficial)" for n in names]
    keys = [k for k in LABELS if any(k in r.scores for r in reports.values())]
    rows = [
        [LABELS[k]]
        + [f"{reports[n].scores[k]:.3f}" if k in reports[n].scores else "-" for n in names]
        for k in keys
    ]
    table = [["metric", *heads], *rows]
    if markdown:
        lines = ["| " + " | ".join(r) + " |" for r in table]
        lines.insert(1, "|---" * len(table[0]) + "|")
        lines.append("")  # footers after a blank line, or markdown reads them as table rows
    else:
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        lines = [
            "  ".join(
                [
                    r[0].ljust(widths[0]),
                    *(c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)),
                ]
            )
            for r in table
        ]
    footers = {n: _footer(r) for n, r in reports.items()}
    shared = [line for line in footers[names[0]] if all(line in f for f in footers.values())]
    notes = shared + [f"{n}: {line}" for n in names for line in footers[n] if line not in shared]
    lines += [f"- {line}" for line in notes] if markdown else notes
    return "\n".join(lines)


def _footer(report: MetricsReport) -> list[str]:
    how = "official PTB tokenizer" if report.official else "unofficial Python tokenizer"
    by_reason: dict[str, list[str]] = {}
    for name, why in report.skipped.items():
        by_reason.setdefault(why, []).append(name)
    return [
        f"{report.n_images} images, {how}",
        *(f"skipped {', '.join(names)}: {why}" for why, names in by_reason.items()),
        *report.notes,
    ]


def python_tokenize(caption: str) -> str:
    """The fallback tokenizer: lower-cased Penn Treebank words with PTB's punctuation dropped.

    helpers.data.vocabulary.tokenize (nltk's Treebank tokenizer: "doesn't" -> "does n't", "dog's" ->
    "dog 's", "t-shirt" kept) and then, as pycocoevalcap does after the PTB tokenizer, every token
    made only of . ? ! , : ; - ' ` " or brackets is removed. It agrees with the official tokenizer
    on 1499 of the 1500 captions of the real COCO sample; it differs on brackets (PTB keeps
    "-lrb-") and on abbreviations ("co." stays whole in PTB).
    """
    return " ".join(t for t in tokenize(caption) if not set(t) <= _PUNCTUATION_CHARS)


def _one_line(text: str) -> str:
    # Line breaks of any kind would shift the PTB tokenizer's one-caption-per-line output.
    return " ".join(text.split())


def ptb_tokenize(captions: list[str], java: str = "java", timeout: float = 120.0) -> list[str]:
    """The official tokenization (pycocoevalcap's Stanford PTB tokenizer) of many captions at once.

    The same jar, options and punctuation list as pycocoevalcap's PTBTokenizer, run once for all
    captions, with a timeout, and with its temporary file outside the (maybe read-only) package.
    """
    from pycocoevalcap.tokenizer import ptbtokenizer as ptb

    jar = Path(ptb.__file__).parent / ptb.STANFORD_CORENLP_3_4_1_JAR
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "captions.txt"
        src.write_text("\n".join(_one_line(c) for c in captions), encoding="utf-8")
        cmd = [java, "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer"]
        proc = subprocess.run(
            [*cmd, "-preserveLines", "-lowerCase", str(src)],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    if proc.returncode != 0:
        why = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[0]
        raise RuntimeError(f"PTB tokenizer exited with {proc.returncode}: {why[:160]}")
    lines = proc.stdout.decode("utf-8", errors="replace").split("\n")
    if len(lines) < len(captions) or any(line.strip() for line in lines[len(captions) :]):
        raise RuntimeError(f"PTB tokenizer gave {len(lines)} lines for {len(captions)} captions")
    drop = set(ptb.PUNCTUATIONS)
    return [
        " ".join(w for w in line.rstrip().split(" ") if w not in drop)
        for line in lines[: len(captions)]
    ]


def _call_with_timeout(fn: Callable[[], Any], timeout: float) -> Any:
    # The Java scorers read their answers with a blocking readline, which no timeout reaches.
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # handed to the caller's thread
            box["error"] = err

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"no answer after {timeout:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


_meteor = None  # one METEOR process, kept: its JVM takes 10-20 s to load the paraphrase tables


def _close_meteor() -> None:
    global _meteor
    scorer, _meteor = _meteor, None
    if scorer is None:
        return
    # A compute_score that failed never released its lock, and Meteor.__del__ waits for it.
    scorer.lock = threading.Lock()
    scorer.meteor_p.kill()
    scorer.meteor_p.wait()
    for pipe in (scorer.meteor_p.stdin, scorer.meteor_p.stdout, scorer.meteor_p.stderr):
        try:
            pipe.close()
        except OSError:
            pass


atexit.register(_close_meteor)


def _meteor_scores(gts: dict, res: dict, timeout: float) -> tuple[float, list[float]]:
    global _meteor
    from pycocoevalcap.meteor.meteor import Meteor

    if _meteor is None or _meteor.meteor_p.poll() is not None:
        _meteor = Meteor()
    # "|||" separates fields in METEOR's line protocol; the official wrapper only cleans hypotheses.
    gts = {i: [c.replace("|||", " ") for c in caps] for i, caps in gts.items()}
    res = {i: [c.replace("|||", " ") for c in caps] for i, caps in res.items()}
    scorer = _meteor
    try:
        return _call_with_timeout(lambda: scorer.compute_score(gts, res), timeout)
    except BaseException:
        _close_meteor()
        raise


def spice_missing() -> str | None:
    """Why SPICE cannot run here (its Stanford CoreNLP models are not installed), or None."""
    from pycocoevalcap.spice import get_stanford_models as gsm

    lib = Path(gsm.SPICEDIR) / gsm.SPICELIB
    if all((lib / f"{gsm.JAR}{end}.jar").is_file() for end in ("", "-models")):
        return None
    return (
        f"{gsm.JAR} models not in pycocoevalcap/spice/{gsm.SPICELIB} "
        "(pycocoevalcap downloads them at first use, which needs the internet)"
    )


def metrics_to_skip(skip: Collection[str]) -> set[str]:
    """The metric names asked to be skipped, in any case; an unknown name is a one-line error."""
    wanted = {s.upper().replace("_", "-"): s for s in skip}
    known = {s.upper(): s for s in SCORERS}
    unknown = [orig for key, orig in wanted.items() if key not in known]
    if unknown:
        raise CourseError(
            f"unknown metric to skip {unknown[0]!r} (choose from {', '.join(SCORERS)})"
        )
    return {known[key] for key in wanted}


def _tokenize(
    captions: list[str], use_java: bool | None, timeout: float
) -> tuple[list[str], str, str | None]:
    """PTB-tokenized captions, or Python-tokenized ones with the reason the Java metrics can't run."""
    java = find_java() if use_java is None else "java" if use_java else None
    why_not = "Java not found (the PTB tokenizer, METEOR and SPICE need Java 8+)"
    if java is not None:
        try:
            return ptb_tokenize(captions, java, timeout), "PTB", None
        except (OSError, subprocess.SubprocessError, RuntimeError) as err:
            why_not = f"Java failed ({_one_line(str(err))[:160]})"
    return [python_tokenize(c) for c in captions], "python", why_not


def _run_scorers(
    gts: dict, res: dict, skipped: dict[str, str], timeout: float
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Each pycocoevalcap scorer not in `skipped`: overall and per-image scores by metric name."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    scores: dict[str, float] = {}
    each: dict[str, list[float]] = {}
    if "BLEU" not in skipped:
        total, per = Bleu(4).compute_score(gts, res, verbose=0)
        for n in range(4):
            scores[f"Bleu_{n + 1}"], each[f"Bleu_{n + 1}"] = total[n], per[n]
    if "METEOR" not in skipped:
        try:
            scores["METEOR"], each["METEOR"] = _meteor_scores(gts, res, timeout)
        except Exception as err:
            skipped["METEOR"] = f"failed ({_one_line(str(err))[:160] or type(err).__name__})"
    if "ROUGE-L" not in skipped:
        scores["ROUGE_L"], each["ROUGE_L"] = Rouge().compute_score(gts, res)
    if "CIDEr" not in skipped:
        scores["CIDEr"], each["CIDEr"] = Cider().compute_score(gts, res)
    if "SPICE" not in skipped:
        from pycocoevalcap.spice.spice import Spice

        try:
            # SPICE parses every caption: much slower than the others.
            total, per = _call_with_timeout(lambda: Spice().compute_score(gts, res), 4 * timeout)
            scores["SPICE"], each["SPICE"] = total, [s["All"]["f"] for s in per]
        except Exception as err:
            skipped["SPICE"] = f"failed ({_one_line(str(err))[:160] or type(err).__name__})"
    return {k: float(v) for k, v in scores.items()}, each


def score_captions(
    references: Mapping[int, list[str]],
    candidates: Mapping[int, str],
    per_image: bool = False,
    skip: Collection[str] = (),
    use_java: bool | None = None,
    timeout: float | None = None,
) -> MetricsReport:
    """Score one candidate caption per image against that image's reference captions.

    use_java: None finds Java on PATH; False takes the unofficial Python path. timeout (seconds)
    bounds each Java call; by default 120 s plus 50 ms per image.
    """
    skipped = {name: "on request" for name in metrics_to_skip(skip)}
    notes = []
    bad = next((i for i, c in candidates.items() if not isinstance(c, str) or not c.strip()), None)
    if bad is not None:
        raise CourseError(f"the candidate caption of image {bad} is empty")
    ids = sorted(i for i in candidates if references.get(i))
    if len(ids) < len(candidates):
        notes.append(
            f"{len(candidates) - len(ids)} captioned images have no references: not scored"
        )
    uncaptioned = sum(1 for i, refs in references.items() if refs and i not in candidates)
    if uncaptioned:
        notes.append(f"{uncaptioned} images with references have no caption: not scored")
    if not ids:
        raise CourseError("nothing to score: no captioned image has reference captions")
    timeout = timeout if timeout is not None else 120.0 + 0.05 * len(ids)
    flat = [c for i in ids for c in [*references[i], candidates[i]]]
    flat, tokenizer, why_not = _tokenize(flat, use_java, timeout)
    if why_not:
        skipped.setdefault("METEOR", why_not)
        skipped.setdefault("SPICE", why_not)
    gts, res, pos = {}, {}, 0
    for i in ids:
        n = len(references[i])
        gts[i], res[i], pos = flat[pos : pos + n], [flat[pos + n]], pos + n + 1
    if "SPICE" not in skipped and (why := spice_missing()):
        skipped["SPICE"] = why
    scores, each = _run_scorers(gts, res, skipped, timeout)
    report = MetricsReport(
        scores=scores,
        n_images=len(ids),
        tokenizer=tokenizer,
        skipped=skipped,
        notes=notes,
    )
    if per_image:
        report.per_image = {i: {k: float(v[j]) for k, v in each.items()} for j, i in enumerate(ids)}
    return report
