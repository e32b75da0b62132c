"""Hostile servers for tests: echoing, injecting, trickling and oversized registries, receivers and GitHub APIs."""
