"""Everything that touches the world: Docker, BuildKit, registries, git, kustomize, Flux's Receivers."""
