package transit

import (
	"encoding/base64"
	"net/http"

	"github.com/coffer-dev/coffer/internal/logical"
)

// b64Field decodes an optional base64 field; present reports whether the
// field was sent at all (an empty string is present and empty). Errors name
// the field, never its value.
func b64Field(data map[string]any, field string) (b []byte, present bool, err error) {
	v, ok := data[field]
	if !ok || v == nil {
		return nil, false, nil
	}
	s, err := logical.ParseString(field, v)
	if err != nil {
		return nil, true, err
	}
	b, err = base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, true, logical.BadRequest("failed to base64-decode %s", field)
	}
	return b, true, nil
}

// intField reads an optional integer field that must fit an int.
func intField(data map[string]any, field string) (int, error) {
	n, err := logical.ParseInt(field, data[field])
	if err != nil {
		return 0, err
	}
	if n < -1<<31 || n > 1<<31-1 {
		return 0, logical.BadRequest("%s: %d is out of range", field, n)
	}
	return int(n), nil
}

// stringField reads an optional string field.
func stringField(data map[string]any, field string) (string, error) {
	return logical.ParseString(field, data[field])
}

// refuseNonce refuses a non-empty nonce: it only means something with
// convergent encryption.
func refuseNonce(data map[string]any) error {
	s, err := stringField(data, "nonce")
	if err != nil {
		return err
	}
	if s != "" {
		return bad(msgNonce)
	}
	return nil
}

// batchInput returns the items of batch_input and true, or false when the
// request is not a batch. Each item may only hold the given fields.
func batchInput(data map[string]any, fields ...string) ([]map[string]any, bool, error) {
	raw, ok := data["batch_input"]
	if !ok || raw == nil {
		return nil, false, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, true, logical.BadRequest("batch_input: must be a list of objects")
	}
	if len(list) == 0 {
		return nil, true, logical.BadRequest("missing batch input to process")
	}
	items := make([]map[string]any, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, true, logical.BadRequest("batch_input[%d]: must be an object", i)
		}
		if err := logical.CheckFields(m, fields...); err != nil {
			msg, _ := clientMessage(err)
			return nil, true, logical.BadRequest("batch_input[%d]: %s", i, msg)
		}
		items[i] = m
	}
	return items, true, nil
}

// itemResult is one entry of batch_results, or the whole answer of a
// single request.
type itemResult struct {
	data map[string]any // the successful result
	err  error          // or why it failed
}

// batch collects the results of a batch request (or of a single item).
type batch struct {
	results []itemResult
	refs    []string
}

func newBatch(n int) *batch {
	return &batch{results: make([]itemResult, 0, n), refs: make([]string, 0, n)}
}

// add records the result of the next item.
func (bt *batch) add(ref string, data map[string]any, err error) {
	bt.results = append(bt.results, itemResult{data: data, err: err})
	bt.refs = append(bt.refs, ref)
}

// respond renders the results. A single request answers with its one
// result, or its error. A batch answers with batch_results, each with its
// reference. With strict set (encrypt, decrypt, rewrap: Vault's rule) a
// batch with a failed item is a 400 (500 if every failure was internal),
// unless some item succeeded and partialCode (the request's
// partial_failure_response_code) is set; hmac, sign and verify batches
// are always 200.
func (b *Backend) respond(bt *batch, isBatch, strict bool, partialCode int) (*logical.Response, error) {
	if !isBatch {
		r := bt.results[0]
		if r.err != nil {
			return nil, asClientError(r.err)
		}
		return &logical.Response{Data: r.data}, nil
	}
	out := make([]map[string]any, len(bt.results))
	var ok, userErr, internalErr bool
	for i, r := range bt.results {
		item := r.data
		if r.err != nil {
			msg, isClient := clientMessage(r.err)
			if isClient {
				userErr = true
			} else {
				internalErr = true
				msg = "internal error"
				b.log.Error("transit: batch item failed", "item", i, "err", r.err)
			}
			item = map[string]any{"error": msg}
		} else {
			ok = true
		}
		item["reference"] = bt.refs[i]
		out[i] = item
	}
	resp := &logical.Response{Data: map[string]any{"batch_results": out}}
	if !strict || (!userErr && !internalErr) {
		return resp, nil
	}
	resp.Status = http.StatusBadRequest
	if !userErr {
		resp.Status = http.StatusInternalServerError
	}
	if ok && partialCode != 0 {
		resp.Status = partialCode
	}
	return resp, nil
}

// partialCode reads partial_failure_response_code: 0 when absent, else an
// HTTP status from 200 to 599.
func partialCode(data map[string]any) (int, error) {
	code, err := intField(data, "partial_failure_response_code")
	if err != nil {
		return 0, err
	}
	if code != 0 && (code < 200 || code > 599) {
		return 0, logical.BadRequest("partial_failure_response_code: %d is not an HTTP status from 200 to 599", code)
	}
	return code, nil
}

// items builds the per-item inputs of a request: the batch_input items, or
// the request itself as the single item.
func items(data map[string]any, fields ...string) ([]map[string]any, bool, error) {
	list, isBatch, err := batchInput(data, fields...)
	if err != nil || isBatch {
		return list, isBatch, err
	}
	return []map[string]any{data}, false, nil
}

// reference reads an item's reference, which is echoed back as is (a
// number is echoed as its string; other types as "").
func reference(item map[string]any) string {
	s, err := logical.ParseString("reference", item["reference"])
	if err != nil {
		return ""
	}
	return s
}
