"""Errors a simulated Task reports, named as Step Functions names them."""

from __future__ import annotations


class TaskError(Exception):
    """A Task error as Step Functions reports it: an error name and a cause."""

    def __init__(self, name: str, cause: str):
        super().__init__(cause)
        self.name, self.cause = name, cause
