"""The models: backbones, the chapter's CNN + LSTM, Show, Attend and Tell, LRCN's classifier,
decoding, the decoder registry and the one checkpoint format. Nothing here trains, draws or scores."""

from helpers.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "backbones": (
            "RESNETS",
            "BACKBONES",
            "SmallCNN",
            "GridFeatures",
            "build_backbone",
            "grid_features",
        ),
        "cnn_lstm": ("CNNModel", "LSTMModel", "init_forget_gate_bias"),
        "attention": ("GridEncoder", "SoftAttention", "AttentionDecoder", "with_places"),
        "video": ("ActionLSTM",),
        "autoencoder": ("ConvAutoencoder",),
        "decoding": ("beam_search", "sum_until_end"),
        "registry": ("DECODERS", "Decoder", "decoder_kind", "build_models"),
        "checkpoint": (
            "BEST",
            "LAST",
            "save_checkpoint",
            "read_checkpoint",
            "best_checkpoint",
            "checkpoint_vocabulary",
            "load_models",
            "model_kind",
            "reads_images",
        ),
    },
)
