"""Error kinds, each mapped to one exit code by the command-line and action edges."""


class InputError(ValueError):
    """Bad user input: names the input and what is accepted (exit code 2)."""


class PublishError(RuntimeError):
    """A step of the real job failed (login, build, push, registry): exit code 1."""
