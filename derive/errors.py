"""Errors for bad input. All are ValueErrors, so callers can catch one type."""


class BackpropInputError(ValueError):
    """Bad input from a user: the message names the bad value and what is allowed."""


class UnknownNameError(BackpropInputError):
    """An activation, loss or model kind that the registry does not know."""

    def __init__(self, kind: str, name: object, known: list[str]):
        self.name, self.known = name, known
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(known)}")


class SpecError(BackpropInputError):
    """A malformed model spec string or a size that is not a positive integer."""


class IncompatibleError(BackpropInputError):
    """A combination that does not fit, e.g. categorical cross-entropy on one sigmoid unit."""
