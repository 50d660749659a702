"""Runnable examples: ``python -m training.examples.linear_regression`` and ``.text_classification``."""
