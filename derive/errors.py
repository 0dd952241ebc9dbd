"""Errors for bad input. All are ValueErrors, so callers can catch one type."""

import difflib


def did_you_mean(word: object, choices) -> str:
    """`` (did you mean 'relu'?)`` for a near miss among ``choices``, else ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class BackpropInputError(ValueError):
    """Bad input from a user: the message names the bad value and what is allowed."""


class UnknownNameError(BackpropInputError):
    """An activation, loss or model kind that the registry does not know."""

    def __init__(self, kind: str, name: object, known: list[str]):
        self.name, self.known = name, known
        hint = did_you_mean(name, known)
        super().__init__(f"unknown {kind} {name!r}{hint}; known: {', '.join(known)}")


class SpecError(BackpropInputError):
    """A malformed model spec string or a size that is not a positive integer."""


class IncompatibleError(BackpropInputError):
    """A combination that does not fit, e.g. categorical cross-entropy on one sigmoid unit."""
