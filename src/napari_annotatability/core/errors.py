"""Errors raised for bad input, with messages that say what to do."""

from __future__ import annotations


class AnnotatabilityInputError(ValueError):
    """The input cannot be used as given.

    The message names the offending key or parameter, what was found and what
    to do about it. Subclasses :class:`ValueError`, so generic handlers still
    catch it.
    """
