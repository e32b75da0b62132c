"""The whole loop on one machine (`image-tagger demo`): a local registry, bare git repositories, the
action's own publish code, Flux on two real clusters (`realclusters`) or simulated by `fluxrules`
(`simulated`), and the app run as a container.

Not part of the action's image. It carries the `flux/` base and the `kustomize/` example it serves as
package data (`image_tagger.demo.base`, `image_tagger.demo.example`), so it runs from a plain
`pip install`; `--source PATH` serves a flux-ci-cd checkout instead.
"""


class DemoError(RuntimeError):
    """A step of the demo did not turn out as the loop promises (exit code 1, one line)."""
