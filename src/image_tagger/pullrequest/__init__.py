"""The pull-request gate: one pull request per Flux automation branch, saying which images it changes and how.

`python -m image_tagger.pullrequest` is the entrypoint of the `pull-request/` action (the main action's image).
"""
