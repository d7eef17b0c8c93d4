"""The error of the AWS back-end."""

from bakery.errors import BakeryError


class CompileError(BakeryError):
    """The plan asks for something this back-end cannot express."""
