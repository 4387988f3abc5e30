"""Reusable code of the image-captioning course (CNN encoder + LSTM decoder)."""

from helpers.errors import CourseError

__all__ = ["CourseError"]
