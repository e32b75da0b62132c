"""This project's own pure decisions: naming, image names, releases, inputs, the report's text."""
