package kv

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/coffer-dev/coffer/internal/logical"
)

// maxPathLen bounds a secret's path so that every storage key derived
// from it stays far below the key limits of the storage backends.
const maxPathLen = 2048

// Storage key prefixes; see the package documentation.
const (
	v1Prefix     = "v1/"
	v2ConfigKey  = "v2/config"
	v2MetaPrefix = "v2/meta/"
	v2DataPrefix = "v2/data/"
	folderSuffix = "/"
)

const errPathPrefix = "invalid path: "

// checkPath refuses a secret path that could not name a secret: empty,
// empty segments, "." or "..", control characters, invalid UTF-8, or too
// long. With folder set the path names a folder to list: it may be empty
// (the root) and must otherwise end in "/".
func checkPath(p string, folder bool) error {
	if len(p) > maxPathLen {
		return logical.BadRequest(errPathPrefix+"longer than %d bytes", maxPathLen)
	}
	if !utf8.ValidString(p) {
		return logical.BadRequest(errPathPrefix + "not valid UTF-8")
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f {
			return logical.BadRequest(errPathPrefix + "contains a control character")
		}
	}
	if folder {
		if p == "" {
			return nil
		}
		if !strings.HasSuffix(p, folderSuffix) {
			return logical.BadRequest(errPathPrefix + "a folder to list must end in \"/\"")
		}
		p = strings.TrimSuffix(p, folderSuffix)
	} else {
		if p == "" {
			return logical.BadRequest(errPathPrefix + "missing secret path")
		}
		if strings.HasSuffix(p, folderSuffix) {
			return logical.BadRequest(errPathPrefix + "a secret path must not end in \"/\"")
		}
	}
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return logical.BadRequest(errPathPrefix + "contains an empty segment")
		case ".", "..":
			return logical.BadRequest(errPathPrefix+"contains a %q segment", seg)
		}
	}
	return nil
}

func v1Key(path string) string   { return v1Prefix + path }
func metaKey(path string) string { return v2MetaPrefix + path }

// dataDir is the storage folder holding the versions of path.
func dataDir(path string) string {
	sum := sha256.Sum256([]byte(path))
	return v2DataPrefix + hex.EncodeToString(sum[:]) + "/"
}

func dataKey(path string, n uint64) string {
	return dataDir(path) + strconv.FormatUint(n, 10)
}
