# Sourced by cluster/build and the helper scripts: one place for the Go cache locations.
# FCI_CACHE may be set by the caller (./dev sets nothing; the default is the machine's cache folder).
: "${FCI_CACHE:=/var/cache/fci}"
export GOMODCACHE="${GOMODCACHE_OVERRIDE:-$FCI_CACHE/go/mod}"
export GOCACHE="${GOCACHE_OVERRIDE:-$FCI_CACHE/go/build}"
# Only the committed go.sum files are trusted; -mod=readonly makes a build that would change them fail.
export GOFLAGS=-mod=readonly
export GOTOOLCHAIN=local
export CGO_ENABLED=0
