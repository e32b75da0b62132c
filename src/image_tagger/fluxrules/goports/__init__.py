"""Ports of the Go libraries Flux decides with (Masterminds semver, RE2 regexp, strconv, YAML)."""
