# shellcheck shell=bash
# Sourced by cluster/build and the helper scripts: one place for the Go settings of the cluster's builds.
# FCI_CACHE (as in ./dev) holds the Go module and build caches and the built binaries.
: "${FCI_CACHE:=/var/cache/fci}"
export GOMODCACHE=$FCI_CACHE/go/mod
export GOCACHE=$FCI_CACHE/go/build
# Only the committed go.sum files are trusted: a build that would change them fails.
export GOFLAGS="-mod=readonly -buildvcs=false"
# The machine's own Go (1.26); no pinned module needs a newer one, so none is fetched.
export GOTOOLCHAIN=local
export CGO_ENABLED=0
