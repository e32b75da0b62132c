"""Flux's image automation decisions (tag selection, manifest setters), reproduced offline."""
