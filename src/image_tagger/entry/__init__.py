"""Entry points: the container action and the image-tagger command; they parse, call a job, render."""
