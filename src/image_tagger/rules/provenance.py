"""Which SLSA provenance a build asks BuildKit for, and the words that say what the image carries.

As docker/build-push-action decides it: `mode=max` (the full build record) for public repositories, `min` for
private ones, whose build arguments and sources should not be listed. A repository we cannot see is taken as
private.
"""

from __future__ import annotations

from image_tagger.model.states import Builder, ProvenanceMode

NO_STORE = (
    "none: this daemon's classic image store cannot hold attestations (turn on its containerd image store, as "
    "Engine 29 does by default)"
)


def wanted(choice: ProvenanceMode, private: bool | None, builder: Builder) -> tuple[str | None, str]:
    """The mode to ask for (None: none) and what the summary says of it, before asking the daemon."""
    if choice == ProvenanceMode.FALSE:
        return None, "none (provenance: false)"
    if builder == Builder.LEGACY:
        return None, "none: the legacy builder makes no attestations"
    if choice in (ProvenanceMode.MAX, ProvenanceMode.MIN):
        return str(choice), f"SLSA provenance, mode={choice}"
    mode = "max" if private is False else "min"
    why = "a public repository" if private is False else "a private repository, or one the event does not describe"
    return mode, f"SLSA provenance, mode={mode} ({why})"
