"""One exception type per engine stage, all under AssessorError."""


class AssessorError(Exception):
    """Base class: a problem the user can act on, with a one-line message."""


class RubricError(AssessorError):
    """A rubric file is missing, malformed or inconsistent."""


class IntakeError(AssessorError):
    """A source URL was refused, or cloning it failed."""


class TransientIntakeError(IntakeError):
    """Cloning failed on the way to the host (refused, unreachable, reset, DNS not answering): worth retrying."""


class OutOfRoomError(AssessorError):
    """The service ran out of disk space: its problem, never the learner's; the attempt waits for room."""


class EnvironmentBuildError(AssessorError):
    """The learner's dependencies could not be installed."""


class SandboxError(AssessorError):
    """The sandbox could not be set up (not: the learner's code failed inside it)."""


class MeasureError(AssessorError):
    """A measurement could not be taken at all."""


class ReportError(AssessorError):
    """A stored report could not be read back."""


class CertificateError(AssessorError):
    """A certificate could not be built, signed, rendered or sealed."""


class ModuleImportError(AssessorError):
    """A file or request of course-module results was refused; `problems` lists each one by line."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        first = "; ".join(f"line {line}: {message}" for line, message in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        super().__init__(f"nothing was imported: {first}{more}")


class IntegrityError(AssessorError):
    """Integrity evidence could not be gathered (fingerprints, history)."""
