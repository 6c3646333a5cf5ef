package kv

import "errors"

// errCorrupt reports a stored entry that does not decode. Decoder errors
// are not wrapped: their text can quote bytes of the stored secret.
var errCorrupt = errors.New("stored entry is not a valid JSON object")
