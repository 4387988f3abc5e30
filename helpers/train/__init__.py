"""Training: the settings of a run, the data it reads, the loop (resume, checkpoints, torchrun),
pretraining a backbone offline, and the auto-encoder aside. `python -m helpers.train` runs it."""

from helpers.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "config": ("TrainConfig", "PRESETS", "changed_settings"),
        "data": ("image_captions", "feature_cache_path", "video_items", "clip_cache", "loaders"),
        "loop": ("History", "step_loss", "validation_loss", "train", "ensure_checkpoint"),
        "pretrain": ("WordsInImage", "pretrain_encoder"),
        "autoencoder": (
            "load_images",
            "to_tensor",
            "add_noise",
            "train_autoencoder",
            "unlike_images",
        ),
    },
)
