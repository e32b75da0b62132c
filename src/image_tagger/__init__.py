"""image-tagger: git ref -> image tags -> registry -> what Flux will roll out."""

__version__ = "0.1.0"
