package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// The line format, specified in docs/audit-format.md.
const (
	// FormatVersion is the "format" of a genesis line.
	FormatVersion = "coffer-audit/1"

	// GenesisString is what the first line of a new chain hashes to in its
	// prev_hash: that line has no predecessor.
	GenesisString = "coffer audit log v1 genesis"

	// GenesisHash is the hex SHA-256 of GenesisString.
	GenesisHash = "30c35a22d3ef8949918375eb364e542fed881c8725a3661e1d48b14a58281478"

	// MaxLineSize bounds a line, newline excluded. Devices refuse larger
	// records (ErrLineTooLong) and Verify rejects larger lines, so reading
	// a log needs bounded memory.
	MaxLineSize = 64 << 20
)

// Line types.
const (
	typeRequest  = "request"
	typeResponse = "response"
	typeGenesis  = "genesis"
)

// chainFieldsMax bounds what appendChain adds to a body.
const chainFieldsMax = len(`,"seq":18446744073709551615,"prev_hash":""}`) + 64

// appendChain turns a line body (a JSON object) into a complete line
// numbered seq and chained to the line whose hash is prev, without the
// newline. body must not be used afterwards.
func appendChain(body []byte, seq uint64, prev *[sha256.Size]byte) []byte {
	line := append(body[:len(body)-1], `,"seq":`...) // reopen the object
	line = strconv.AppendUint(line, seq, 10)
	line = append(line, `,"prev_hash":"`...)
	line = hex.AppendEncode(line, prev[:])
	return append(line, `"}`...)
}

func genesisHash() [sha256.Size]byte {
	return sha256.Sum256([]byte(GenesisString))
}
