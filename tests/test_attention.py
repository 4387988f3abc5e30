"""Show, Attend and Tell: the grid encoder, the attention decoder, both decoders through every tool,
the feature cache of grids, heat-maps and the pointing game."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
import torch
from PIL import Image

from helpers.caption.attention import attend_file
from helpers.caption.captioner import Captioner, caption_files
from helpers.data.features import ensure_features
from helpers.data.registry import dataset_split
from helpers.errors import CourseError
from helpers.evaluate.objects import named_objects
from helpers.evaluate.pointing import point_hit, pointing_game
from helpers.evaluate.split import evaluate_checkpoint
from helpers.models.attention import AttentionDecoder, GridEncoder, with_places
from helpers.models.backbones import SmallCNN, build_backbone
from helpers.models.checkpoint import read_checkpoint
from helpers.models.registry import build_models
from helpers.plots.attention import plot_attention, plot_pointing_game
from helpers.train.config import TrainConfig
from helpers.train.data import feature_cache_path
from helpers.train.loop import train

matplotlib.use("Agg")
END = 2


@pytest.fixture(scope="module")
def decoder_and_features():
    torch.manual_seed(0)
    decoder = AttentionDecoder(16, 12, 24, 15, max_seq_len=9, attention_size=10).eval()
    return decoder, torch.randn(6, 9, 16)  # six images, a 3x3 grid of 16 channels


@pytest.fixture(scope="module")
def runs(small_coco, small_config, tmp_path_factory) -> dict[str, Path]:
    """One short run of each decoder on the fixture, in one data folder."""
    data = tmp_path_factory.mktemp("data_dir")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_DATA_DIR", str(data))
        for decoder in ("lstm", "attention"):
            cfg = small_config(small_coco, decoder=decoder, attention_size=16, epochs=2)
            train(cfg, out=data / decoder, progress=False)
    return {"data": data, "lstm": data / "lstm", "attention": data / "attention"}


def _until_end(row: torch.Tensor) -> list[int]:
    ids = row.tolist()
    return ids[: ids.index(END) + 1] if END in ids else ids


def test_attention_weights_sum_to_one_over_the_grid(decoder_and_features):
    decoder, features = decoder_and_features
    captions = torch.randint(3, 15, (6, 7))
    lengths = [7, 7, 6, 5, 5, 3]
    logits = decoder(features, captions, lengths)
    assert logits.shape == (sum(lengths), 15)
    alphas = decoder.alphas  # (B, T, L): zero on padding, else a distribution over the 9 places
    assert alphas.shape == (6, 7, 9)
    for b, n in enumerate(lengths):
        assert torch.allclose(alphas[b, :n].sum(-1), torch.ones(n), atol=1e-5)
        assert alphas[b, n:].abs().sum() == 0
    ids, weights = decoder.sample(features, return_attention=True)
    assert weights.shape == (6, 9, 9)
    assert torch.allclose(weights.sum(-1), torch.ones(6, 9), atol=1e-5)


def test_each_caption_in_a_batch_scores_as_it_would_alone(decoder_and_features):
    # The batch steps only the captions still running: a short caption's scores and weights
    # must not depend on the longer ones beside it, nor on the padding after it.
    decoder, features = decoder_and_features
    captions = torch.randint(3, 15, (6, 7))
    lengths = [7, 6, 6, 4, 2, 1]
    batch = decoder(features, captions, lengths)
    alphas = decoder.alphas
    steps = torch.arange(7).unsqueeze(1) < torch.tensor(lengths)  # (T, B): the packed order
    rows = torch.arange(6).expand(7, 6)[steps]  # which caption each packed row belongs to
    for b, n in enumerate(lengths):
        alone = decoder(features[b : b + 1], captions[b : b + 1, :n], [n])
        assert torch.allclose(batch[rows == b], alone, atol=1e-5)
        assert torch.allclose(alphas[b, :n], decoder.alphas[0], atol=1e-6)
    with pytest.raises(ValueError, match="longest first"):
        decoder(features, captions, [3, 7, 6, 4, 2, 1])


def test_penalty_is_zero_when_every_place_gets_one_unit_of_attention(decoder_and_features):
    decoder, _ = decoder_and_features
    decoder.alphas = torch.eye(4).unsqueeze(0)  # 4 words, each looking at its own place
    assert decoder.penalty(1.0).item() == 0
    decoder.alphas = torch.full((1, 4, 4), 0.0).index_fill_(2, torch.tensor([0]), 1.0)
    assert decoder.penalty(2.0).item() == pytest.approx(2.0 * (9 + 1 + 1 + 1) / 4)


def test_beam_of_one_is_exactly_greedy(decoder_and_features):
    decoder, features = decoder_and_features
    greedy, greedy_weights = decoder.sample(features, return_attention=True)
    beam, scores, weights = decoder.beam_search(features, beam_size=1, end_id=END)
    for g, b, gw, bw in zip(greedy, beam, greedy_weights, weights, strict=True):
        n = len(_until_end(g))
        assert _until_end(g) == _until_end(b)
        assert torch.allclose(gw[:n], bw[:n], atol=1e-6)
    assert torch.allclose(scores, decoder.log_probability(features, greedy, END), atol=1e-5)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_wider_beams_are_never_less_likely_than_greedy(decoder_and_features, k):
    decoder, features = decoder_and_features
    greedy = decoder.log_probability(features, decoder.sample(features), END)
    ids, scores, weights = decoder.beam_search(features, beam_size=k, end_id=END)
    assert (scores >= greedy - 1e-5).all()
    assert torch.allclose(scores, decoder.log_probability(features, ids, END), atol=1e-5)
    # The weights returned are those of the caption returned: recomputed, they are the same.
    decoder(features, ids, [ids.size(1)] * len(ids))
    for b, row in enumerate(ids):
        n = len(_until_end(row))
        assert torch.allclose(weights[b, :n], decoder.alphas[b, :n], atol=1e-5)


def test_beam_search_is_batched_not_per_image(decoder_and_features):
    decoder, features = decoder_and_features
    together = decoder.beam_search(features, beam_size=3, end_id=END)[0]
    alone = torch.cat(
        [decoder.beam_search(features[i : i + 1], 3, end_id=END)[0] for i in range(6)]
    )
    assert torch.equal(together, alone)


def test_places_are_the_grid_coordinates():
    placed = with_places(torch.zeros(2, 9, 4))
    assert placed.shape == (2, 9, 6)
    assert placed[0, 0, 4:].tolist() == [-1, -1]  # top left
    assert placed[0, 5, 4:].tolist() == [1, 0]  # row 1, column 2: the right edge, middle row
    assert placed[1, 8, 4:].tolist() == [1, 1]


def test_grid_encoders_keep_the_map_before_pooling():
    images = torch.randn(2, 3, 64, 64)
    small = GridEncoder("small", None).eval()
    assert isinstance(small.backbone, SmallCNN)
    assert small(images).shape == (2, 64, 128)  # 64 px / 8 = 8 x 8 places, 128 channels
    resnet = GridEncoder("resnet18", None).eval()
    assert resnet(images).shape == (2, 4, 512)  # 64 / 32 = 2 x 2
    assert GridEncoder("resnet18", None, grid=3).eval()(images).shape == (2, 9, 512)
    cached = torch.randn(2, 9, 512)
    assert resnet(cached) is cached  # the feature cache's grids pass through
    # The frozen backbone stays in eval mode while the decoder trains.
    assert not resnet.train().backbone.training
    assert not any(p.requires_grad for p in resnet.parameters())


def test_a_grid_cache_is_stale_for_vectors_and_the_other_way(tmp_path, capsys):
    backbone = build_backbone("small")
    files = []
    for i in range(3):
        files.append(tmp_path / f"{i}.png")
        Image.new("RGB", (40, 40), (80 * i, 20, 200)).save(files[-1])
    encoder = GridEncoder("small", None)
    grid, kind = encoder.feature_extractor()
    path = tmp_path / "cache.pt"
    vectors = ensure_features(path, backbone, "small", files, 32, progress=False)
    assert vectors.shape == (3, 1, 512)
    grids = ensure_features(path, grid, "small", files, 32, progress=False, kind=kind)
    assert "stale (other output" in capsys.readouterr().out
    assert grids.shape == (3, 1, 16, 128)
    again = ensure_features(path, grid, "small", files, 32, progress=False, kind=kind)
    assert capsys.readouterr().out == "" and torch.equal(again, grids)
    # Each decoder has its own cache file, so switching back and forth rebuilds nothing.
    lstm, attention = TrainConfig(), TrainConfig(decoder="attention")
    assert feature_cache_path(lstm, "train") != feature_cache_path(attention, "train")


def test_pointing_game_on_a_hand_made_case():
    # A 200 x 100 image squeezed to 40 x 40, centre crop 32: the model sees x 20..180, y 10..90.
    box = [[60.0, 30.0, 15.0]]  # centre (60, 30), radius 15: x 45..75, y 15..45
    weights = torch.zeros(4, 4)  # cell centres: x 40, 80, 120, 160; y 20, 40, 60, 80
    weights[0, 1] = 1.0  # peak at (80, 20): outside (x > 75)
    hit, chance, uniform = point_hit(weights, box, (200, 100), 40, 32)
    assert not hit
    assert chance == pytest.approx(30 * 30 / (160 * 80))
    assert uniform == 0  # no cell centre is inside the box
    weights[0, 1], weights[1, 0] = 0.0, 0.7  # peak at (40, 40): x 40 < 45, outside again
    assert not point_hit(weights, box, (200, 100), 40, 32)[0]
    bigger = [[60.0, 30.0, 25.0]]  # x 35..85, y 5..55: cells (40|80, 20|40) are inside
    hit, chance, uniform = point_hit(weights, bigger, (200, 100), 40, 32)
    assert hit and uniform == pytest.approx(4 / 16)
    assert chance == pytest.approx(50 * 45 / (160 * 80))  # clipped at the top of the view (y 10)
    two = [[60.0, 30.0, 15.0], [140.0, 70.0, 25.0]]  # the second: x 115..165, y 45..95
    weights.zero_()
    weights[3, 3] = 1  # (160, 80): inside the second box; a word naming both objects hits
    hit, chance, uniform = point_hit(weights, two, (200, 100), 40, 32)
    assert hit and uniform == pytest.approx(4 / 16)
    assert chance == pytest.approx((30 * 30 + 50 * 45) / (160 * 80))
    weights[0, 3] = 2  # the peak moves to (160, 20): outside both
    assert not point_hit(weights, two, (200, 100), 40, 32)[0]


def test_pointing_game_figure_puts_the_older_game_beside_the_bound_one():
    def rates(hit: float) -> dict:
        return {"words": 10, "hit": hit, "chance": 0.2, "uniform": 0.25}

    groups = {"colour": rates(0.8), "shape": rates(1.0), "grayscale": rates(0.5)}
    bound = {**rates(0.9), "unnamed_words": 1, "by": groups}
    older = {**rates(0.7), "unnamed_words": 0, "by": {"colour": rates(0.6), "shape": rates(0.75)}}
    alone = plot_pointing_game(bound).axes[0]
    assert [c.get_label() for c in alone.containers] == [
        "attention's peak",
        "chance (box area)",
        "uniform attention",
    ]
    assert [b.get_height() for b in alone.containers[0]] == [0.9, 0.8, 1.0, 0.5]
    ax = plot_pointing_game(bound, older).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "grayscale\n(10 words)"
    beside = ax.containers[1]
    assert beside.get_label() == "older game (unbound)"
    # Only in the groups the older game has, each next to the bound game's bar of its group.
    assert [b.get_height() for b in beside] == [0.7, 0.6, 0.75]
    hits = [b.get_x() for b in ax.containers[0]]
    assert all(0 < b.get_x() - x < 0.3 for b, x in zip(beside, hits, strict=False))
    matplotlib.pyplot.close("all")


def test_words_name_the_objects_of_their_colour_or_shape():
    truth = {
        "grayscale": False,
        "shapes": [{"shape": "circle", "color": "red"}, {"shape": "circle", "color": "blue"}],
    }
    assert len(named_objects("circles", truth)) == 2
    assert named_objects("red", truth) == [truth["shapes"][0]]
    assert named_objects("star", truth) == [] and named_objects("left", truth) == []
    assert named_objects("red", {**truth, "grayscale": True}) == []  # no colour in a gray image


def test_both_decoders_train_caption_and_evaluate(runs, small_coco):
    val = dataset_split(str(small_coco), "val")
    files = sorted(Path(val.images).iterdir())[:3]
    for kind in ("lstm", "attention"):
        ckpt = read_checkpoint(runs[kind] / "best.pt")
        assert ckpt["config"]["decoder"] == kind
        captioner = Captioner(runs[kind], device="cpu")  # nobody says which decoder
        greedy = caption_files(captioner, files)
        beam = caption_files(captioner, files, beam_size=3)
        assert all(r.caption is not None for r in greedy + beam)
        results, report = evaluate_checkpoint(
            captioner,
            val.annotations,
            val.images,
            beam_size=2,
            skip=["METEOR", "SPICE"],
            progress=False,
        )
        assert len(results) + len(report.notes) >= 1 and "CIDEr" in report.scores


def test_attention_maps_and_pointing_game_of_a_trained_model(runs, small_coco):
    val = dataset_split(str(small_coco), "val")
    captioner = Captioner(runs["attention"], device="cpu")
    image = sorted(Path(val.images).iterdir())[0]
    found = attend_file(captioner, image)
    assert found.words == caption_files(captioner, [image])[0].caption.split()
    side = captioner.config["crop"] // 8
    assert found.weights.shape == (len(found.words), side, side)
    assert torch.allclose(found.weights.sum((1, 2)), torch.ones(len(found.words)), atol=1e-5)
    assert found.view.size[0] < Image.open(image).size[0]  # the centre crop, not the whole image
    fig = plot_attention(found.view, found.words, found.weights, title=image.name)
    assert len([ax for ax in fig.axes if ax.images]) == len(found.words) + 1
    game = pointing_game(captioner, val.annotations, val.images, progress=False)
    assert len(game.captions) == 20
    named = game.by.get("colour", None), game.by.get("shape", None)
    assert game.words == sum(g.words for g in named if g is not None)
    assert 0 <= game.rates()["chance"] < 1 and 0 <= game.rates()["uniform"] < 1
    with pytest.raises(CourseError, match="chapter's decoder, which has no attention"):
        pointing_game(Captioner(runs["lstm"], device="cpu"), val.annotations, val.images)


def _run(*args: str, cwd: Path, data: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COURSE_DATA_DIR": str(data)}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_caption_command_draws_attention_maps(runs, small_coco, tmp_path):
    val = dataset_split(str(small_coco), "val")
    images = [str(p) for p in sorted(Path(val.images).iterdir())[:2]]
    out = tmp_path / "maps" / "att.png"

    def caption(decoder: str, *files: str) -> subprocess.CompletedProcess:
        flags = ["--checkpoint", str(runs[decoder]), "--attention-map", str(out)]
        return _run("helpers.caption", *files, *flags, cwd=tmp_path, data=runs["data"])

    done = caption("attention", *images)
    assert done.returncode == 0, done.stderr
    for image in images:
        drawn = out.with_name(f"att_{Path(image).stem}.png")
        assert Image.open(drawn).size[0] > 300, drawn
    refused = caption("lstm", images[0])
    assert refused.returncode != 0
    assert refused.stderr.count("\n") == 1 and "--decoder attention" in refused.stderr


def test_attention_map_names_are_unique_folders_and_formats_follow_the_name(
    runs, small_coco, tmp_path
):
    source = sorted(dataset_split(str(small_coco), "val").images.iterdir())[0]
    for name in ("a/x.jpg", "b/x.jpg", "b/x.png"):  # two share a name and a folder, two a stem
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.open(source).save(tmp_path / name)
    files = ["a/x.jpg", "b/x.jpg", "b/x.png"]

    def caption(target: str) -> subprocess.CompletedProcess:
        flags = ["--checkpoint", str(runs["attention"]), "--attention-map", target]
        return _run("helpers.caption", *files, *flags, cwd=tmp_path, data=runs["data"])

    done = caption("maps/m.jpg")
    assert done.returncode == 0, done.stderr
    assert "attention maps: 3 files, each named after its image" in done.stdout
    drawn = sorted((tmp_path / "maps").iterdir())
    assert [p.name for p in drawn] == ["m_a_x_jpg.jpg", "m_b_x_jpg.jpg", "m_b_x_png.jpg"]
    assert all(Image.open(p).format == "JPEG" for p in drawn)  # the bytes the name promises
    mask = os.umask(0)
    os.umask(mask)
    assert all(p.stat().st_mode & 0o777 == 0o666 & ~mask for p in drawn)  # not private
    done = caption("folder/")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == [
        "a_x_jpg.png",
        "b_x_jpg.png",
        "b_x_png.png",
    ]
    refused = caption("maps.gif")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "maps.gif: an attention map is written as .png, .jpg" in refused.stderr


def test_changing_the_decoder_on_resume_is_one_line(runs, small_coco, tmp_path):
    args = ["helpers.train", "--dataset", str(small_coco), "--out", str(runs["lstm"])]
    sizes = ["--embedding-size", "32", "--hidden-size", "32", "--resize", "40", "--crop", "32"]
    sizes += ["--batch-size", "16", "--epochs", "3", "--pretrain-epochs", "1", "--quiet"]
    done = _run(*args, *sizes, "--decoder", "attention", cwd=tmp_path, data=runs["data"])
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "decoder='lstm'" in done.stderr, done.stderr
    bad = _run(*args, "--decoder", "transformer", cwd=tmp_path, data=runs["data"])
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "decoder" in bad.stderr
    layers = _run(
        *args, "--decoder", "attention", "--num-layers", "2", cwd=tmp_path, data=runs["data"]
    )
    assert layers.returncode != 0 and "num_layers must be 1" in layers.stderr


def test_old_checkpoints_without_a_decoder_are_the_chapters(runs):
    ckpt = read_checkpoint(runs["lstm"] / "last.pt")
    config = {k: v for k, v in ckpt["config"].items() if k not in ("decoder", "grid")}
    from helpers.train.config import changed_settings

    assert changed_settings(config, TrainConfig(**ckpt["config"])) == {}
    assert json.loads(json.dumps(config))  # plain values only


def test_a_course_checkpoint_lends_its_backbone(runs, small_coco, small_config, monkeypatch):
    path = runs["lstm"] / "best.pt"
    stored = read_checkpoint(path)["encoder"]
    net = build_backbone("small", str(path))
    for name, tensor in net.state_dict().items():
        assert torch.equal(tensor, stored[f"backbone.{name}"])
    with pytest.raises(CourseError, match="a checkpoint with backbone 'small', not 'resnet18'"):
        build_backbone("resnet18", str(path))
    # The attention decoder on the chapter model's backbone: no pretraining, same features.
    monkeypatch.setenv("COURSE_DATA_DIR", str(runs["data"]))
    cfg = small_config(small_coco, decoder="attention", weights=str(path), epochs=1)
    history = train(cfg, out=runs["data"] / "borrowed", progress=False)
    assert history.pretrain_loss == [] and len(history.val_loss) == 1
    encoder = read_checkpoint(runs["data"] / "borrowed" / "last.pt")["encoder"]
    assert all(torch.equal(encoder[k], v) for k, v in stored.items() if k.startswith("backbone."))


def test_report_table_puts_models_side_by_side():
    from helpers.evaluate.tiny import report_table

    objects = {"colors": 1.0, "shapes": 0.5, "both": 0.5}
    report = {
        "metrics": {"Bleu_4": 0.25, "CIDEr": 1.5},
        "objects": {"one shape": objects, "two shapes": objects},
    }
    lines = report_table({"a": report}, {"Bleu_4": 0.4, "METEOR": 0.3, "CIDEr": 2.0}).splitlines()
    assert lines[0].count("|") == lines[1].count("|") == lines[2].count("|") == lines[3].count("|")
    assert (
        lines[2] == "| a | 0.250 | nan | 1.500 | 100.0% / 50.0% / 50.0% | 100.0% / 50.0% / 50.0% |"
    )
    assert lines[3].startswith("| humans (first caption) | 0.400 | 0.300 | 2.000 |")


def test_evaluate_plays_the_bound_pointing_game_for_attention_checkpoints(
    runs, small_coco, tmp_path
):
    def evaluate(decoder: str) -> tuple[subprocess.CompletedProcess, dict]:
        out = tmp_path / f"{decoder}_results.json"
        args = ["--checkpoint", str(runs[decoder]), "--dataset", str(small_coco), "--split", "val"]
        args += ["--skip", "METEOR", "SPICE", "--out", str(out), "--quiet"]
        done = _run("helpers.evaluate", *args, cwd=tmp_path, data=runs["data"])
        assert done.returncode == 0, done.stderr
        return done, json.loads(out.with_name(f"{decoder}_results.metrics.json").read_text())

    done, metrics = evaluate("attention")
    assert "bound pointing game:" in done.stdout and "CHAIR-s" in done.stdout
    game = metrics["pointing"]
    assert {"words", "hit", "chance", "uniform", "unnamed_words", "by"} <= set(game)
    assert metrics["objects"]["all"]["images"] == 20
    done, metrics = evaluate("lstm")  # no attention, no game
    assert "pointing" not in done.stdout and "pointing" not in metrics


@pytest.mark.parametrize(("gate", "places"), [(False, True), (True, False), (False, False)])
def test_the_gate_and_the_places_can_be_taken_away(gate, places):
    decoder = AttentionDecoder(16, 12, 24, 15, 9, 10, gate=gate, places=places).eval()
    assert (decoder.gate_layer is not None) == gate
    assert decoder.init_h.in_features == 16 + (2 if places else 0)
    ids, alphas = decoder.sample(torch.randn(2, 9, 16), return_attention=True)
    assert ids.shape == (2, 9) and torch.allclose(alphas.sum(-1), torch.ones(2, 9))
    config = {"decoder": "attention", "backbone": "small", "weights": None, "freeze": True}
    config |= {"embedding_size": 12, "hidden_size": 24, "max_seq_len": 9, "num_layers": 1}
    _, built = build_models(config | {"gate": gate, "places": places}, 15)
    assert (built.gate_layer is not None) == gate and built.places == places
