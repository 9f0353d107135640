"""The error raised when a meta-analytic model cannot be fitted as specified."""

from __future__ import annotations


class ModelError(ValueError):
    """A model that cannot be fitted as specified; the message gives the reason.

    Raised for a singular design (naming the aliased columns), a moderator with a single level,
    too few effect sizes for the model, non-positive sampling variances, an unknown method or test,
    and invalid fixed variance components.
    """
