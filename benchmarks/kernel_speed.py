"""Print how much two CPU choices in the models save: the small CNN in channels-last memory, and
the attention decoder stepping only the captions still running.

In the same run, taking turns, best of --rounds rounds each:
(a) the small CNN at the course's 64 px crop, one training batch of 64 (forward, backward, Adam),
    with the image tensor in the default NCHW layout against channels-last (what SmallCNN.forward
    does), and the feature cache's inference per image both ways;
(b) the attention decoder at the course's sizes (64 places, hidden 128, attention 64), one
    training batch of 64 captions whose lengths are drawn from the tiny COCO's training captions:
    every row for every step (the longest caption's count, as a padded batch costs) against only
    the rows still running at each step (AttentionDecoder.forward).
The default run is also written to benchmarks/results/kernel_speed.jsonl ("default" row).
Run: python benchmarks/kernel_speed.py [--rounds 5] [--threads N] [--no-record]   (about a minute)
"""

import argparse
import json
import time

import torch

from helpers.data.annotations import load_captions
from helpers.data.registry import dataset_split
from helpers.data.vocabulary import tokenize
from helpers.evaluate.measured import about_run, record_result
from helpers.models.attention import AttentionDecoder
from helpers.models.backbones import SmallCNN

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--rounds", type=int, default=5, help="rounds per way; the best counts")
p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
p.add_argument("--no-record", action="store_true", help="print only")
args = p.parse_args()
if args.rounds < 1:
    raise SystemExit(f"--rounds {args.rounds}: must be at least 1")
if args.threads:
    torch.set_num_threads(args.threads)
torch.manual_seed(0)


def best_ms(fn, repeats: int) -> float:
    """The best of args.rounds rounds of `repeats` calls, in milliseconds per call."""
    fn()  # warm-up: first calls allocate
    rounds = []
    for _ in range(args.rounds):
        began = time.perf_counter()
        for _ in range(repeats):
            fn()
        rounds.append((time.perf_counter() - began) / repeats * 1000)
    return min(rounds)


# (a) The small CNN: the same weights and batch, only the memory layout differs.
cnn = SmallCNN()
head = torch.nn.Linear(cnn.out_features, 64)
optimizer = torch.optim.Adam([*cnn.parameters(), *head.parameters()])
images = torch.randn(64, 3, 64, 64)


def nchw(x: torch.Tensor) -> torch.Tensor:
    return cnn.pool(cnn.features(x.contiguous())).flatten(1)  # SmallCNN.forward without the switch


def train_step(forward) -> None:
    loss = head(forward(images)).logsumexp(-1).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


cnn_ms = {
    "nchw": best_ms(lambda: train_step(nchw), 5),
    "channels_last": best_ms(lambda: train_step(cnn), 5),
}
cnn.eval()
with torch.inference_mode():
    infer_ms = {
        "nchw": best_ms(lambda: nchw(images), 10) / len(images),
        "channels_last": best_ms(lambda: cnn(images), 10) / len(images),
    }

# (b) The attention decoder on caption lengths as the tiny COCO has them (<start> .. <end>).
captions = load_captions(dataset_split("tiny", "train").annotations)["annotations"]
pool = torch.tensor([len(tokenize(a["caption"])) + 2 for a in captions])
lengths = pool[torch.randint(len(pool), (64,))].sort(descending=True).values
steps = int(lengths[0])
decoder = AttentionDecoder(128, 128, 128, 60, 20, 64)
dec_optimizer = torch.optim.Adam(decoder.parameters())
grid = torch.randn(64, 64, 128)
tokens = torch.randint(4, 60, (64, steps))


def decoder_step(rows_lengths: torch.Tensor) -> None:
    logits = decoder(grid, tokens, rows_lengths)
    loss = logits.logsumexp(-1).mean() + decoder.penalty()
    dec_optimizer.zero_grad(set_to_none=True)
    loss.backward()
    dec_optimizer.step()


padded = torch.full_like(lengths, steps)  # every row for every step: what padding costs
att_ms = {
    "every_row": best_ms(lambda: decoder_step(padded), 5),
    "running_rows": best_ms(lambda: decoder_step(lengths), 5),
}

row = {
    "benchmark": "kernel_speed",
    "variant": "default",
    "cnn_train_batch_ms": {k: round(v, 1) for k, v in cnn_ms.items()},
    "cnn_train_speedup": round(cnn_ms["nchw"] / cnn_ms["channels_last"], 2),
    "cnn_infer_ms_per_image": {k: round(v, 3) for k, v in infer_ms.items()},
    "cnn_infer_speedup": round(infer_ms["nchw"] / infer_ms["channels_last"], 2),
    "caption_tokens_mean": round(lengths.float().mean().item(), 1),
    "caption_tokens_max": steps,
    "attention_train_batch_ms": {k: round(v, 1) for k, v in att_ms.items()},
    "attention_speedup": round(att_ms["every_row"] / att_ms["running_rows"], 2),
} | about_run()
print(json.dumps(row))
print(
    f"small CNN, training batch of 64: {cnn_ms['nchw']:.0f} ms NCHW, "
    f"{cnn_ms['channels_last']:.0f} ms channels-last ({row['cnn_train_speedup']}x)"
)
print(
    f"small CNN, inference per image: {infer_ms['nchw']:.2f} ms NCHW, "
    f"{infer_ms['channels_last']:.2f} ms channels-last ({row['cnn_infer_speedup']}x)"
)
print(
    f"attention decoder, batch of 64 captions ({row['caption_tokens_mean']} tokens on average, "
    f"{steps} at most): {att_ms['every_row']:.0f} ms every row, {att_ms['running_rows']:.0f} ms "
    f"running rows only ({row['attention_speedup']}x)"
)
if not args.no_record and not args.threads and args.rounds == 5:
    record_result("kernel_speed", row, key=("variant",))
