"""Captioning with a trained checkpoint: images (greedy or beam search), where attention looked,
beam search step by step, and videos. `python -m helpers.caption` captions files."""

from helpers.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "captioner": ("Captioner", "Result", "caption_files", "caption_split"),
        "attention": ("Attended", "attend", "attend_file", "model_view", "save_attention_map"),
        "beam_tree": ("BeamStep", "record_beam_search", "beam_paths", "best_path"),
        "video": ("VideoModel", "describe_split"),
    },
)
