package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// VerifyResult describes the part of a log Verify checked.
type VerifyResult struct {
	// Lines is how many lines were verified; on failure, how many came
	// before the first broken one.
	Lines int
	// FirstSeq and LastSeq are the seq of the first and last verified line.
	FirstSeq, LastSeq uint64
	// StartHash is the prev_hash of the first line: GenesisHash for a log
	// that starts a new chain, otherwise the hash of the last line of the
	// log it continues (the file it was rotated from).
	StartHash string
	// LastHash is the hex SHA-256 of the last verified line: the StartHash
	// of the next rotated file, and the value to anchor elsewhere.
	LastHash string
}

// NewChain reports whether the log starts a new chain rather than
// continuing a rotated one.
func (r *VerifyResult) NewChain() bool { return r.StartHash == GenesisHash }

// String summarizes r for humans, as `coffer audit verify` prints it.
func (r *VerifyResult) String() string {
	if r.Lines == 0 {
		return "no lines verified"
	}
	start := "starts a new chain"
	if !r.NewChain() {
		start = "continues a log whose last line hashes to " + r.StartHash
	}
	return fmt.Sprintf("%d lines verified (seq %d to %d); the log %s; last line hashes to %s",
		r.Lines, r.FirstSeq, r.LastSeq, start, r.LastHash)
}

// VerifyFile verifies the log at path; see Verify.
func VerifyFile(path string) (*VerifyResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	defer f.Close()
	res, err := Verify(f)
	if err != nil {
		return res, fmt.Errorf("verify %s: %w", path, err)
	}
	return res, nil
}

// Verify reads a log and checks that every line is a well-formed record,
// that seq grows by one from line to line, and that each prev_hash is the
// SHA-256 of the line before it. The first line must be a genesis line.
// Concatenated rotated files (cat old new) verify as one log.
//
// On the first broken line Verify returns a *ChainError naming it, with the
// result for the lines before it; other errors come from reading r. When a
// line's prev_hash does not match, Verify looks one line further to tell an
// edited previous line (blamed) from an edited prev_hash (blamed itself).
// Removing whole lines from the end of a log cannot be detected from the
// log alone: compare LastHash with an anchored copy.
func Verify(r io.Reader) (*VerifyResult, error) {
	res := &VerifyResult{}
	var before VerifyResult // res as it was before the previous line
	lr := lineReader{r: bufio.NewReaderSize(r, 64<<10)}
	var prev []byte // previous line, for its hash
	var prevSeq uint64
	for n := 1; ; n++ {
		line, reason, err := lr.next()
		if err == io.EOF {
			if n == 1 {
				return res, &ChainError{Line: 1, Reason: "log is empty"}
			}
			return res, nil
		}
		if err != nil {
			return res, fmt.Errorf("audit: verify: read line %d: %w", n, err)
		}
		if reason != "" {
			return res, &ChainError{Line: n, Reason: reason}
		}
		f, reason := parseLine(line)
		if reason != "" {
			return res, &ChainError{Line: n, Reason: reason}
		}
		if n == 1 {
			if f.Type != typeGenesis {
				return res, &ChainError{Line: 1, Reason: "first line is not a genesis line (start of log removed?)"}
			}
			if *f.PrevHash == GenesisHash && *f.Seq != 0 {
				return res, &ChainError{Line: 1, Reason: "a new chain must start at seq 0"}
			}
		} else {
			if want := prevSeq + 1; *f.Seq != want {
				why := "line(s) missing before it"
				if *f.Seq <= prevSeq {
					why = "lines reordered or duplicated"
				}
				return res, &ChainError{Line: n, Reason: fmt.Sprintf("seq %d where %d was expected: %s", *f.Seq, want, why)}
			}
			if *f.PrevHash != hashHex(prev) {
				if lr.confirms(line, *f.Seq) {
					return &before, &ChainError{Line: n - 1, Reason: fmt.Sprintf("line was modified: its hash does not match the prev_hash of line %d", n)}
				}
				return res, &ChainError{Line: n, Reason: fmt.Sprintf("prev_hash does not match line %d (line %d modified, or this line's prev_hash altered)", n-1, n-1)}
			}
		}
		before = *res
		if n == 1 {
			res.FirstSeq, res.StartHash = *f.Seq, *f.PrevHash
		}
		res.Lines++
		res.LastSeq, res.LastHash = *f.Seq, hashHex(line)
		prev, prevSeq = line, *f.Seq
	}
}

// confirms reads one line ahead and reports whether it chains correctly to
// line (numbered seq): then line is intact, and a mismatch between line and
// the one before it means the one before was edited. Read errors count as
// no confirmation; the caller stops at this point anyway.
func (lr *lineReader) confirms(line []byte, seq uint64) bool {
	next, reason, err := lr.next()
	if err != nil || reason != "" {
		return false
	}
	f, reason := parseLine(next)
	return reason == "" && *f.Seq == seq+1 && *f.PrevHash == hashHex(line)
}

func hashHex(line []byte) string {
	h := sha256.Sum256(line)
	return hex.EncodeToString(h[:])
}

// lineReader splits a log into lines of at most MaxLineSize bytes.
type lineReader struct {
	r *bufio.Reader
}

// next returns the next line without its newline. A final line without a
// newline, or an overlong line, is reported in reason; io.EOF means no
// more lines.
func (lr *lineReader) next() (line []byte, reason string, err error) {
	var buf []byte
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxLineSize+1 {
			return nil, reasonTooLong, nil
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return buf[:len(buf)-1], "", nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if len(buf) == 0 {
				return nil, "", io.EOF
			}
			return nil, reasonNoNewline, nil
		default:
			return nil, "", err
		}
	}
}

const (
	reasonNoNewline = "incomplete last line (no trailing newline): log truncated or write interrupted"
	reasonTooLong   = "line longer than the maximum line size"
)

// chainFields are the fields of a line that Verify checks.
type chainFields struct {
	Type     string  `json:"type"`
	Format   string  `json:"format"`
	Seq      *uint64 `json:"seq"`
	PrevHash *string `json:"prev_hash"`
}

// parseLine decodes the chain fields of a line, or says what is wrong with
// it; the reason never quotes the line.
func parseLine(line []byte) (chainFields, string) {
	var f chainFields
	if len(bytes.TrimSpace(line)) == 0 {
		return f, "empty line"
	}
	if line[0] != '{' {
		return f, "not a JSON object"
	}
	if err := json.Unmarshal(line, &f); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return f, fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
		}
		return f, "a field has the wrong type"
	}
	switch {
	case f.Seq == nil:
		return f, "missing seq"
	case f.PrevHash == nil:
		return f, "missing prev_hash"
	case !isHexHash(*f.PrevHash):
		return f, "prev_hash is not a lowercase hex SHA-256"
	}
	switch f.Type {
	case typeRequest, typeResponse:
	case typeGenesis:
		if f.Format != FormatVersion {
			return f, "genesis line of an unsupported format"
		}
	default:
		return f, "unknown record type"
	}
	return f, ""
}

func isHexHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
