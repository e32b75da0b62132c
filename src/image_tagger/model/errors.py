"""Every error kind that crosses a module, and the exit code each means (`exit_code`).

Two families, two codes: bad input (InputError and its kinds) is exit 2, before anything happened; a step
of the real job that failed (PublishError and its kinds, files, policies that select nothing) is exit 1.
Kept elsewhere on purpose: PushFailed beside PublishResult (model/result.py), which it carries; the Go ports'
own errors (mastersemver, goregex), which mirror Go's error values and never leave their callers; the HTTP
bounds' DeadlineExceeded and AnswerTooLarge, which are requests exceptions; the demo's own errors.
"""


class InputError(ValueError):
    """Bad user input: names the input and what is accepted (exit code 2)."""


class PublishError(RuntimeError):
    """A step of the real job failed (login, build, push, registry): exit code 1."""


class NotPushed(PublishError):
    """BuildKit built the image but its push failed. `image_id` names the image it built ("" when its progress did
    not say), so the registry can still be read back: a manifest sent before the failure may have landed."""

    def __init__(self, message: str, image_id: str = "") -> None:
        super().__init__(message)
        self.image_id = image_id


class PushStalled(NotPushed):
    """The daemon sent nothing for IMAGE_TAGGER_DOCKER_TIMEOUT during a push. We closed the call (or ended buildx),
    which cancels the daemon's push, but a manifest it had already sent may still be stored by the registry: only a
    read-back tells."""


class BuildError(PublishError):
    """The build itself failed; `step` names the Dockerfile step when BuildKit said which."""

    def __init__(self, message: str, step: str | None = None) -> None:
        super().__init__(message)
        self.step = step


class UnsupportedTemplate(ValueError):
    """The template uses text/template features beyond the supported subset."""


class FileError(OSError):
    """A file of the update could not be read or written; one line naming it (exit code 1)."""

    def __str__(self) -> str:
        return str(self.args[0])


class InvalidPolicy(InputError):
    """The ImagePolicy/ImageRepository spec itself is unusable (Flux: Stalled, reason InvalidPolicy)."""


class PolicyFailure(RuntimeError):
    """Evaluation failed or no tag qualifies (Flux: Ready=False, retried)."""


class JSONError(ValueError):
    """Not JSON (the decoder's message), over the size limit, or nested too deep; one line saying which."""


class LayoutError(InputError):
    """The file is laid out in a way these line edits do not handle (or is not one YAML document)."""


class ReleaseLost(PublishError):
    """Another commit's run pushed the release tag over ours: this run must not report success."""


def exit_code(err: BaseException) -> int | None:
    """2 for bad input, 1 for a failed step, None for an error that is not one of ours (a bug: let it show)."""
    if isinstance(err, InputError):
        return 2
    if isinstance(err, PublishError | FileError | PolicyFailure | UnsupportedTemplate | JSONError):
        return 1
    return None
