#!/usr/bin/env bash
# Installs the Bitnami sealed-secrets peer tools, kubeseal and the controller,
# at the pinned version into $COFFER_CACHE_DIR/bin (default
# $HOME/.cache/coffer-testenv/bin), outside the repository. Binaries already
# present at this version are not rebuilt.
#
# The interoperability tests in internal/sealedsecrets, internal/cli and
# internal/controller/sealedsecret look for them there (or at
# COFFER_KUBESEAL_BIN / COFFER_SEALED_SECRETS_CONTROLLER_BIN).
#
# v0.27.1 is the last release that installs with `go install` from this
# module path; later versions moved it.
set -euo pipefail

cache="${COFFER_CACHE_DIR:-$HOME/.cache/coffer-testenv}"
bin="$cache/bin"
mkdir -p "$bin"
chmod 0700 "$cache" "$bin" 2>/dev/null || true

VERSION="v0.27.1"
MODULE="github.com/bitnami-labs/sealed-secrets"

install_one() {
	local cmd="$1" out="$2"
	local stamp="$bin/.$out-$VERSION"
	if [[ -x "$bin/$out" && -f "$stamp" ]]; then
		echo "$out $VERSION already in $bin"
		return
	fi
	echo "installing $MODULE/cmd/$cmd@$VERSION into $bin as $out (go install, takes a few minutes)"
	local tmp
	tmp="$(mktemp -d)"
	# Build outside the repository so its go.mod is not consulted, into a
	# private GOBIN so the two commands (both named after their directory)
	# can be renamed without clobbering each other.
	(cd "$cache" && GOBIN="$tmp" GOFLAGS=-buildvcs=false GOWORK=off \
		go install "$MODULE/cmd/$cmd@$VERSION")
	mv "$tmp/$cmd" "$bin/$out"
	rm -rf "$tmp"
	rm -f "$bin/.$out-v"*
	touch "$stamp"
}

install_one kubeseal kubeseal
install_one controller sealed-secrets-controller
