"""One exception tree. Each error knows the CLI exit code it maps to (DESIGN §2)."""

from __future__ import annotations


class ChaoskitError(Exception):
    """Base of every error chaoskit raises on purpose."""

    exit_code = 3


class UsageError(ChaoskitError):
    """Bad command line or bad experiment file: nothing was started (exit 2)."""

    exit_code = 2


class ExperimentError(UsageError):
    """An experiment file is missing, malformed or names something unknown (exit 2)."""


class InfrastructureError(ChaoskitError):
    """Topology or backend failed: servers did not start or never became ready (exit 3)."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail

    def __str__(self) -> str:
        base = super().__str__()
        if not self.log_tail:
            return base
        tail = "\n".join("    " + line for line in self.log_tail.rstrip().splitlines())
        return f"{base}\n  log tail:\n{tail}"


class MissingDependencyError(InfrastructureError):
    """A server binary or OS capability is missing; the message says how to get it (exit 3)."""


class Interrupted(ChaoskitError):
    """The run was interrupted by SIGINT/SIGTERM; faults were healed and nodes torn down."""

    exit_code = 130
