"""The whole loop on one machine (`image-tagger demo`): a local registry, bare git repositories, the
action's own publish code, Flux's decisions from `flux.automation`, and the app run as a container.

Not part of the action's image. It carries the `flux/` base and the `kustomize/` example it serves as
package data (`image_tagger.demo.flux`, `image_tagger.demo.kustomize`), so it runs from a plain
`pip install`; `--source PATH` serves a flux-ci-cd checkout instead.
"""


class DemoError(RuntimeError):
    """A step of the demo did not turn out as the loop promises (exit code 1, one line)."""
