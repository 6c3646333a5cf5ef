#!/usr/bin/env bash
# Installs the real sops, the peer the SOPS interoperability tests of
# internal/fileenc and internal/cli run against, into $COFFER_CACHE_DIR/bin
# (default $HOME/.cache/coffer-testenv/bin), outside the repository. It is
# built from its Go module with `go install`; a binary already present at the
# pinned version is reused. Tests find it there, or at $COFFER_SOPS_BIN.
set -euo pipefail

SOPS_VERSION="v3.13.3"

cache="${COFFER_CACHE_DIR:-$HOME/.cache/coffer-testenv}"
bin="$cache/bin"
mkdir -p "$bin"
chmod 0700 "$cache" "$bin" 2>/dev/null || true

stamp="$bin/.sops-$SOPS_VERSION"
if [[ -x "$bin/sops" && -f "$stamp" ]]; then
	echo "sops $SOPS_VERSION already in $bin"
	exit 0
fi
echo "installing sops $SOPS_VERSION into $bin (go install; a few minutes on a fresh machine)"
# Run outside the repository so that the project's go.mod is not consulted.
(cd "$cache" && GOBIN="$bin" GOFLAGS=-buildvcs=false GOWORK=off \
	go install "github.com/getsops/sops/v3/cmd/sops@$SOPS_VERSION")
rm -f "$bin"/.sops-v*
touch "$stamp"
"$bin/sops" --version --disable-version-check
