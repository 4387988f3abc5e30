"""The course's figures, by subject; importing the package sets their readable look (style)."""

from helpers.exports import lazy_exports
from helpers.plots import style  # noqa: F401  (text as large as a notebook's body text)

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "style": ("FIGURE_DPI", "FONT_SIZE"),
        "captions": ("caption_grid",),
        "diagrams": ("draw_cnn_lstm", "draw_video_lstm", "draw_attention_step", "plot_packing"),
        "training": ("plot_word_frequencies", "plot_history"),
        "decoding": ("plot_scores_by_beam", "plot_beam_tree"),
        "attention": ("plot_attention", "plot_pointing_game"),
        "video": ("frame_strip", "clip_strips", "plot_confusion"),
        "autoencoder": ("plot_image_rows", "plot_codes_2d", "plot_error_histograms"),
        "ablation": ("plot_ablation",),
    },
)
