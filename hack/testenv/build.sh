#!/usr/bin/env bash
# Builds the Kubernetes control plane Coffer's integration tests run against —
# kube-apiserver (k8s.io/kubernetes) and etcd (go.etcd.io/etcd/server/v3) —
# from their Go modules into $COFFER_CACHE_DIR/bin (default
# $HOME/.cache/coffer-testenv/bin), outside the repository. Binaries already
# built for the pinned versions are reused, so a second run returns at once.
#
# The wrapper modules next to this script (kube-apiserver/, etcd/) each have
# their own go.mod and go.sum; the main module never builds them. The first
# kube-apiserver build takes 7+ minutes on a 2-core machine (downloads
# included). Tests find the binaries there (internal/kubetest), or in
# $COFFER_TESTENV_BIN when set.
#
# Usage: hack/testenv/build.sh [kube-apiserver|etcd]...   (default: both)
set -euo pipefail

KUBE_VERSION="v1.34.4"
ETCD_VERSION="v3.6.6"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${COFFER_CACHE_DIR:-$HOME/.cache/coffer-testenv}"
bin="$cache/bin"
mkdir -p "$bin"
chmod 0700 "$cache" "$bin" 2>/dev/null || true

# build NAME VERSION PACKAGE [go build flags...]
build() {
	local name="$1" version="$2" pkg="$3"
	shift 3
	local stamp="$bin/.$name-$version"
	if [[ -x "$bin/$name" && -f "$stamp" ]]; then
		echo "$name $version already in $bin"
		return 0
	fi
	echo "building $name $version into $bin (go build of $pkg; minutes on a fresh machine)"
	local tmp
	tmp="$(mktemp "$bin/.$name.XXXXXX")"
	# GOWORK=off: the wrapper module is the main module, whatever the caller's
	# environment says. -mod=mod lets a fresh module cache fill itself from
	# the proxy; go.sum pins every module's hash.
	if ! (cd "$here/$name" && GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" \
		go build -o "$tmp" "$@" "$pkg"); then
		rm -f "$tmp"
		echo "building $name failed" >&2
		return 1
	fi
	chmod 0755 "$tmp"
	mv -f "$tmp" "$bin/$name"
	rm -f "$bin/.$name"-v*
	touch "$stamp"
	echo "built $bin/$name"
}

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
	targets=(etcd kube-apiserver)
fi

for t in "${targets[@]}"; do
	case "$t" in
	etcd)
		build etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 -ldflags "-s -w"
		;;
	kube-apiserver)
		# The version variables are what the real release build stamps; the
		# apiserver reports them on /version and derives its binary version
		# (feature-gate emulation) from them.
		vpkg=k8s.io/component-base/version
		minor="${KUBE_VERSION#v1.}"
		minor="${minor%%.*}"
		build kube-apiserver "$KUBE_VERSION" k8s.io/kubernetes/cmd/kube-apiserver \
			-ldflags "-s -w -X $vpkg.gitVersion=$KUBE_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
		;;
	*)
		echo "unknown target $t (want kube-apiserver or etcd)" >&2
		exit 2
		;;
	esac
done

