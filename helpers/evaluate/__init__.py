"""Judging captions: the official COCO metrics, results files, people as the bar to reach, what
the tiny sets know to be true (objects, pointing game, actions). `python -m helpers.evaluate`."""

from helpers.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "metrics": (
            "SCORERS",
            "MetricsReport",
            "metrics_table",
            "score_captions",
            "find_java",
            "spice_missing",
        ),
        "references": (
            "reference_captions",
            "load_results",
            "evaluate_results",
            "against_others",
            "human_agreement",
            "against_other_references",
            "over_seeds",
        ),
        "split": ("evaluate_checkpoint", "metrics_path"),
        "objects": (
            "load_objects",
            "parse_objects",
            "said_objects",
            "true_objects",
            "object_report",
            "people_report",
            "describe_objects",
            "object_verdict",
            "failure_kind",
            "failure_counts",
            "objects_table",
            "object_scores",
            "object_scores_by_count",
            "named_objects",
            "bound_objects",
        ),
        "pointing": ("point_hit", "PointingGame", "pointing_game", "score_pointing"),
        "tiny": ("tiny_report", "report_table"),
        "video": (
            "said_actors",
            "true_actors",
            "actor_scores",
            "caption_is_right",
            "ActionReport",
            "action_report",
            "caption_report",
        ),
        "autoencoder": ("reconstruction_error", "auroc", "pca_2d"),
        "published": ("PUBLISHED", "Published", "published_rows", "published_table"),
        "measured": (
            "results_path",
            "about_run",
            "measured_rows",
            "record_result",
            "result_value",
            "measured_range",
            "measured_table",
            "measured_values",
            "measured_means",
        ),
    },
)
