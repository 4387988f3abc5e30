"""Show, Attend and Tell (Xu et al. 2015): a grid of image features, and a decoder that chooses
where to look before each word. The same calls as the chapter's decoder (helpers.models)."""

from __future__ import annotations

import math
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from tqdm import tqdm

from helpers.annotations import load_captions
from helpers.caption import Captioner
from helpers.errors import CourseError
from helpers.images import load_rgb
from helpers.metrics import against_other_references
from helpers.models import SmallCNN, beam_search, build_backbone, sum_until_end
from helpers.tiny_coco import COLORS, PLURALS, SHAPES, load_objects, object_scores_by_count

START, END = 1, 2  # the vocabulary's <start> and <end> ids (helpers.vocabulary)
SHAPE_WORDS = {**{s: s for s in SHAPES}, **{p: s for s, p in PLURALS.items()}}  # word -> shape


def grid_features(backbone: nn.Module, images: torch.Tensor, grid: int = 0) -> torch.Tensor:
    """The backbone's last feature map before pooling, as L = H x W vectors: (B, L, C).

    The small CNN stops before its last max-pool (6x6 at a 48 px crop); a ResNet before its
    average pool (7x7 at 224 px). `grid` > 0 pools the map to grid x grid (14 for real COCO, as
    the reference implementations do).
    """
    if isinstance(backbone, SmallCNN):
        x = backbone.features[:-1](images)  # all but the last max-pool
    else:
        b = backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(images))))
        x = b.layer4(b.layer3(b.layer2(b.layer1(x))))
    if grid:
        x = nn.functional.adaptive_avg_pool2d(x, grid)
    return x.flatten(2).transpose(1, 2)


class GridFeatures(nn.Module):
    """A backbone as the feature cache runs it: images in, (B, L, C) grids out."""

    def __init__(self, backbone: nn.Module, grid: int = 0) -> None:
        super().__init__()
        self.backbone, self.grid = backbone, grid

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return grid_features(self.backbone, images, self.grid)


class GridEncoder(nn.Module):
    """Encoder: the chapter's CNN without its final pooling, so the decoder sees where things are."""

    def __init__(
        self,
        backbone: str = "resnet152",
        weights: str | os.PathLike | None = "IMAGENET1K_V1",
        freeze: bool = True,
        grid: int = 0,
    ) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone, weights)
        self.freeze, self.grid = freeze, grid
        if freeze:
            self.backbone.requires_grad_(False)
        with torch.no_grad():  # the channels C of the grid: a small image tells
            probe = grid_features(self.backbone.eval(), torch.zeros(1, 3, 64, 64))
        self.out_features = probe.size(-1)

    def train(self, mode: bool = True) -> GridEncoder:
        super().train(mode)
        if self.freeze:
            self.backbone.eval()  # as CNNModel: frozen BatchNorm statistics must not drift
        return self

    def feature_extractor(self) -> tuple[nn.Module, str]:
        """What the feature cache runs once per image, and the kind of output it stores."""
        return GridFeatures(self.backbone, self.grid), f"grid{self.grid or ''}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W), or cached grids (B, L, C), to grids (B, L, C)."""
        if images.dim() == 3:  # from the feature cache: the backbone already ran
            return images
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            return grid_features(self.backbone, images, self.grid)


def with_places(features: torch.Tensor) -> torch.Tensor:
    """Each place's features (B, L, C) followed by its x and y in [-1, 1]: (B, L, C + 2).

    A feature vector says what is there, hardly where; with its coordinates the context also tells
    the decoder where it looked ("on the left", the first of two shapes).
    """
    side = math.isqrt(features.size(1))
    line = torch.linspace(-1, 1, side, device=features.device, dtype=features.dtype)
    ys, xs = torch.meshgrid(line, line, indexing="ij")
    places = torch.stack([xs.flatten(), ys.flatten()], -1).expand(features.size(0), -1, -1)
    return torch.cat([features, places], -1)


class SoftAttention(nn.Module):
    """Additive attention: alpha = softmax over the grid of w^T tanh(W_f f_i + W_h h)."""

    def __init__(self, feature_size: int, hidden_size: int, attention_size: int) -> None:
        super().__init__()
        self.feature_layer = nn.Linear(feature_size, attention_size)  # W_f
        self.hidden_layer = nn.Linear(hidden_size, attention_size)  # W_h
        self.score_layer = nn.Linear(attention_size, 1)  # w

    def forward(
        self, features: torch.Tensor, projected: torch.Tensor, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The context (B, C), a weighted mean of the grid, and its weights alpha (B, L)."""
        # `projected` is feature_layer(features), computed once per image, not once per word.
        scores = self.score_layer(torch.tanh(projected + self.hidden_layer(h).unsqueeze(1)))
        alpha = scores.squeeze(-1).softmax(-1)
        context = (alpha.unsqueeze(-1) * features).sum(1)
        return context, alpha


class AttentionDecoder(nn.Module):
    """Decoder: before each word, look at the grid (soft attention), then an LSTM step.

    Input at step t: the previous word's embedding and the gated context. Like the chapter's
    decoder it predicts <start> first (from <start>) and is trained on the same packed targets.
    """

    def __init__(
        self,
        feature_size: int,
        embedding_size: int = 256,
        hidden_layer_size: int = 512,
        vocabulary_size: int = 10,
        max_seq_len: int = 20,
        attention_size: int = 256,
    ) -> None:
        super().__init__()
        self.embedding_layer = nn.Embedding(vocabulary_size, embedding_size)
        feature_size += 2  # each place's coordinates (with_places)
        self.attention = SoftAttention(feature_size, hidden_layer_size, attention_size)
        self.init_h = nn.Linear(feature_size, hidden_layer_size)  # h0 and c0 from the mean feature
        self.init_c = nn.Linear(feature_size, hidden_layer_size)
        self.gate_layer = nn.Linear(hidden_layer_size, 1)  # beta: one number, how much to look
        self.lstm_cell = nn.LSTMCell(embedding_size + feature_size, hidden_layer_size)
        self.linear_layer = nn.Linear(hidden_layer_size, vocabulary_size)
        self.max_seq_len = max_seq_len
        self.alphas: torch.Tensor | None = None  # (B, T, L) of the last forward, for the penalty

    def start_state(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """h0 and c0 from the mean of the grid; the grid and its projection ride along."""
        features = with_places(features)
        mean = features.mean(1)
        h, c = torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))
        return h, c, features, self.attention.feature_layer(features)

    def attend_and_step(self, tokens: torch.Tensor, state: tuple) -> tuple:
        """One word: attend with h, feed [word embedding, gated context]; logits, state, alpha."""
        h, c, features, projected = state
        context, alpha = self.attention(features, projected, h)
        gate = torch.sigmoid(self.gate_layer(h))  # the paper's beta, (B, 1): how much to let in
        inputs = torch.cat([self.embedding_layer(tokens), gate * context], -1)
        h, c = self.lstm_cell(inputs, (h, c))
        return self.linear_layer(h), (h, c, features, projected), alpha

    def forward(self, features: torch.Tensor, captions: torch.Tensor, lengths) -> torch.Tensor:
        """Logits for the packed targets, as LSTMModel.forward; keeps the weights in self.alphas."""
        # The word before caption word t: <start> before the first, as at inference.
        inputs = torch.cat([torch.full_like(captions[:, :1], START), captions[:, :-1]], 1)
        state = self.start_state(features)
        logits, alphas = [], []
        for t in range(captions.size(1)):
            out, state, alpha = self.attend_and_step(inputs[:, t], state)
            logits.append(out)
            alphas.append(alpha)
        lengths = torch.as_tensor(lengths, dtype=torch.int64, device="cpu")
        steps = torch.arange(captions.size(1), device=captions.device)
        words = (steps.unsqueeze(0) < lengths.to(captions.device).unsqueeze(1)).unsqueeze(-1)
        self.alphas = torch.stack(alphas, 1) * words  # padding looks nowhere
        return pack_padded_sequence(torch.stack(logits, 1), lengths, batch_first=True).data

    def penalty(self, weight: float = 1.0) -> torch.Tensor:
        """The doubly stochastic regulariser: each place's attention, summed over words, near 1."""
        return weight * ((1 - self.alphas.sum(1)) ** 2).mean()

    def start(self, features: torch.Tensor) -> tuple[torch.Tensor, tuple, torch.Tensor]:
        """Step t=0 of decoding, from <start>: log-probabilities, state and attention weights."""
        state = self.start_state(features)
        tokens = torch.full((features.size(0),), START, dtype=torch.long, device=features.device)
        return self.step(tokens, state)

    def step(self, tokens: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple, torch.Tensor]:
        """One more word (ids (N,)): the next word's log-probabilities, the state, the weights."""
        logits, state, alpha = self.attend_and_step(tokens, state)
        return logits.log_softmax(-1), state, alpha

    @staticmethod
    def reorder(state: tuple, index: torch.Tensor) -> tuple:
        """The states of the rows `index` (beam search keeps some beams, drops others)."""
        return tuple(part[index] for part in state)  # batch first: (N, ...)

    @torch.no_grad()
    def sample(self, features: torch.Tensor, return_attention: bool = False):
        """Greedy decoding for `max_seq_len` steps: ids (B, T), and the weights (B, T, L) if asked."""
        logp, state, alpha = self.start(features)
        ids, alphas = [logp.argmax(-1)], [alpha]
        for _ in range(1, self.max_seq_len):
            logp, state, alpha = self.step(ids[-1], state)
            ids.append(logp.argmax(-1))
            alphas.append(alpha)
        ids = torch.stack(ids, 1)
        return (ids, torch.stack(alphas, 1)) if return_attention else ids

    def beam_search(
        self,
        features: torch.Tensor,
        beam_size: int = 3,
        length_penalty: float = 0.0,
        end_id: int = END,
        record: list | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batched beam search (helpers.models.beam_search): ids, scores and attention weights."""
        return beam_search(self, features, beam_size, length_penalty, end_id, record)

    @torch.no_grad()
    def log_probability(
        self, features: torch.Tensor, ids: torch.Tensor, end_id: int = END
    ) -> torch.Tensor:
        """Summed log-probability of each caption in `ids` up to and including its first <end>."""
        lengths = [ids.size(1)] * ids.size(0)
        logits = self(features, ids, lengths).view(ids.size(1), ids.size(0), -1).transpose(0, 1)
        return sum_until_end(logits.log_softmax(-1), ids, end_id)


# --- Looking at the weights: heat-maps and the pointing game -----------------------------------


@dataclass
class Attended:
    """One image's caption with, for each word, where the decoder looked (grid x grid weights)."""

    words: list[str]
    weights: torch.Tensor  # (words, grid, grid), each map sums to 1
    view: Image.Image | None = None  # the part of the image the model sees (the centre crop)


def needs_attention(captioner: Captioner) -> None:
    """A one-line error unless the captioner's checkpoint has the attention decoder."""
    if captioner.config.get("decoder", "lstm") != "attention":
        raise CourseError(
            f"{captioner.path}: trained with the chapter's decoder, which has no attention weights; "
            "train one with --decoder attention"
        )


@torch.no_grad()
def attend(
    captioner: Captioner, images: torch.Tensor, beam_size: int = 1, length_penalty: float = 0.0
) -> list[Attended]:
    """Caption a batch of image tensors (B, 3, crop, crop), keeping each word's attention map."""
    needs_attention(captioner)
    features = captioner.encoder(images.to(captioner.device))
    end = captioner.vocab.word_to_id["<end>"]
    ids, _, weights = beam_search(captioner.decoder, features, beam_size, length_penalty, end)
    side = math.isqrt(weights.size(-1))
    found = []
    for row, maps in zip(ids.cpu(), weights.cpu(), strict=True):
        words, kept = [], []
        # Weights at step t are where the decoder looked to write word t; step 0 writes <start>.
        for t, i in enumerate(row.tolist()):
            word = captioner.vocab.id_to_word[i]
            if word == "<end>":
                break
            if word not in ("<start>", "<pad>"):
                words.append(word)
                kept.append(maps[t].view(side, side))
        found.append(Attended(words, torch.stack(kept) if kept else torch.empty(0, side, side)))
    return found


def model_view(img: Image.Image, resize: int, crop: int) -> tuple[float, float, float, float]:
    """The box (left, top, right, bottom) of the original image that the centre crop shows."""
    offset = round((resize - crop) / 2)  # as torchvision's CenterCrop places it
    sx, sy = img.width / resize, img.height / resize
    return offset * sx, offset * sy, (offset + crop) * sx, (offset + crop) * sy


def attend_file(
    captioner: Captioner, path: str | os.PathLike, beam_size: int = 1, length_penalty: float = 0.0
) -> Attended:
    """One image file's caption and attention maps, with the part of the image the model saw."""
    needs_attention(captioner)
    img = load_rgb(path)
    found = attend(captioner, captioner.transform(img).unsqueeze(0), beam_size, length_penalty)[0]
    found.view = img.crop(model_view(img, captioner.config["resize"], captioner.config["crop"]))
    return found


def point_hit(
    weights: torch.Tensor, boxes: list[list[float]], size: tuple[int, int], resize: int, crop: int
) -> tuple[bool, float, float]:
    """Does the peak of one word's map (grid x grid) fall inside one of the objects' boxes?

    `boxes` are the objects' [centre x, centre y, radius] in the original image of `size`
    (width, height); the model saw it squeezed to resize x resize, then the centre crop.
    Returns the hit, the chance rate (the boxes' share of the area the model sees), and the
    uniform control (the share of grid cells whose centre is in a box: a uniform map's peak is
    any cell with equal odds).
    """
    g = weights.size(-1)
    left, top, right, bottom = model_view(Image.new("1", size), resize, crop)
    # The centre of each grid cell, in the original image's pixels.
    xs = left + (torch.arange(g) + 0.5) * (right - left) / g
    ys = top + (torch.arange(g) + 0.5) * (bottom - top) / g
    inside = torch.zeros(g, g, dtype=torch.bool)
    area = 0.0
    for cx, cy, r in boxes:
        inside |= ((ys - cy).abs() <= r).unsqueeze(1) & ((xs - cx).abs() <= r).unsqueeze(0)
        w = max(0.0, min(right, cx + r) - max(left, cx - r))
        h = max(0.0, min(bottom, cy + r) - max(top, cy - r))
        area += w * h  # the tiny COCO's shapes never overlap
    peak = int(weights.flatten().argmax())
    chance = area / ((right - left) * (bottom - top))
    return bool(inside.flatten()[peak]), chance, inside.float().mean().item()


def named_objects(word: str, truth: dict) -> list[dict]:
    """The objects of a tiny COCO image that a colour or shape word names (none for other words)."""
    shape = SHAPE_WORDS.get(word)
    if shape is not None:
        return [o for o in truth["shapes"] if o["shape"] == shape]
    if word in COLORS and not truth["grayscale"]:
        return [o for o in truth["shapes"] if o["color"] == word]
    return []


@dataclass
class PointingGame:
    """Pointing-game counts: named words, hits, and the two baselines, per kind of word and image."""

    words: int = 0
    hits: int = 0
    chance: float = 0.0  # summed over words; divide by words for the rate
    uniform: float = 0.0
    unnamed: int = 0  # colour or shape words that name no object in the image (wrong words)
    by: dict = field(default_factory=dict)  # "colour", "shape", "one shape", "two shapes"
    captions: dict = field(default_factory=dict)  # image id -> the caption that was scored

    def add(self, hit: bool, chance: float, uniform: float, *groups: str) -> None:
        """Count one named word, in the totals and in each of its groups."""
        for game in (self, *(self.by.setdefault(g, PointingGame()) for g in groups)):
            game.words, game.hits = game.words + 1, game.hits + hit
            game.chance, game.uniform = game.chance + chance, game.uniform + uniform

    def rates(self) -> dict[str, float]:
        """Hit rate, chance rate and uniform-attention rate (shares of the named words)."""
        n = max(1, self.words)
        return {"hit": self.hits / n, "chance": self.chance / n, "uniform": self.uniform / n}

    def summary(self) -> dict:
        """Plain numbers for printing and JSON: the rates overall and per group, and the counts."""
        rates = {k: round(v, 3) for k, v in self.rates().items()}
        groups = {
            g: {"words": p.words, **{k: round(v, 3) for k, v in p.rates().items()}}
            for g, p in self.by.items()
        }
        return {"words": self.words, **rates, "unnamed_words": self.unnamed, "by": groups}


def pointing_game(
    captioner: Captioner,
    annotations: str | os.PathLike,
    images: str | os.PathLike,
    beam_size: int = 1,
    batch_size: int = 64,
    progress: bool = True,
) -> PointingGame:
    """For each generated colour or shape word that names an object of a tiny COCO image: is the
    peak of the attention that wrote it inside that object's box?"""
    needs_attention(captioner)
    objects = load_objects(annotations)
    entries = {img["id"]: img for img in load_captions(annotations)["images"]}
    ids = sorted(entries)
    game = PointingGame()
    resize, crop = captioner.config["resize"], captioner.config["crop"]
    for start in tqdm(range(0, len(ids), batch_size), desc="pointing", disable=not progress):
        chunk = ids[start : start + batch_size]
        pixels = [captioner.load_image(Path(images) / entries[i]["file_name"]) for i in chunk]
        found_all = attend(captioner, torch.stack(pixels), beam_size)
        for image_id, found in zip(chunk, found_all, strict=True):
            truth, entry = objects[image_id], entries[image_id]
            game.captions[image_id] = " ".join(found.words)
            count = "one shape" if len(truth["shapes"]) == 1 else "two shapes"
            for word, weights in zip(found.words, found.weights, strict=True):
                named = named_objects(word, truth)
                if not named:
                    game.unnamed += word in SHAPE_WORDS or word in COLORS
                    continue
                kind = "shape" if word in SHAPE_WORDS else "colour"
                size = (entry["width"], entry["height"])
                hit = point_hit(weights, [o["box"] for o in named], size, resize, crop)
                game.add(*hit, kind, count)
    return game


def tiny_report(
    captioner: Captioner,
    annotations: str | os.PathLike,
    images: str | os.PathLike,
    skip: Collection[str] = (),
    beam_size: int = 1,
    progress: bool = False,
) -> dict:
    """One model on a tiny COCO split: the COCO metrics against the four references the humans
    face, right colours / shapes / both on one- and two-shape images, and the pointing game when
    the model has attention; greedy (beam_size 1) or beam search."""
    from helpers.evaluate import caption_split

    results, problems = caption_split(
        captioner, annotations, images, beam_size=beam_size, progress=progress
    )
    captions = {r["image_id"]: r["caption"] for r in results}
    scores = against_other_references(annotations, results, skip=skip).scores
    report = {
        "metrics": {k: round(v, 3) for k, v in scores.items()},
        "objects": object_scores_by_count(captions, load_objects(annotations)),
        "no_caption": len(problems),
    }
    if captioner.config.get("decoder", "lstm") == "attention":
        game = pointing_game(captioner, annotations, images, beam_size, progress=progress)
        report["pointing"] = game.summary()
    return report


def report_table(reports: dict[str, dict], humans: dict[str, float] | None = None) -> str:
    """tiny_report's results of several models side by side, as a markdown table."""
    metrics = ("Bleu_4", "METEOR", "CIDEr")
    groups, kinds = ("one shape", "two shapes"), ("colors", "shapes", "both")
    head = [*metrics, *(f"{g}: colours / shapes / both" for g in groups)]
    rows = ["| model | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for name, r in reports.items():
        scores = [f"{r['metrics'].get(m, float('nan')):.3f}" for m in metrics]
        objects = [" / ".join(f"{r['objects'][g][k]:.1%}" for k in kinds) for g in groups]
        rows.append(f"| {name} | " + " | ".join(scores + objects) + " |")
    if humans:
        scores = [f"{humans.get(m, float('nan')):.3f}" for m in metrics]
        rows.append("| humans (first caption) | " + " | ".join(scores + ["", ""]) + " |")
    return "\n".join(rows)
