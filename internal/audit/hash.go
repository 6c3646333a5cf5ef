package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// HashRequest returns r as a device keyed with s would log it: a copy in
// which every sensitive value is replaced by "hmac-sha256:<hex>". r is not
// modified, and the copy shares nothing with it.
//
// Hashed: auth client_token and accessor, request client_token and
// client_token_accessor, every string anywhere under request data (map keys
// stay readable, as in Vault), and the values of auth metadata and request
// headers. Empty token and accessor fields stay empty.
//
// Left readable, as in Vault: time, type, operation, path, mount type and
// accessor, namespace, remote address, request id, display name, policies,
// entity id, token type and TTL, numbers and booleans, and the error string.
//
// A value of a type with no JSON meaning of its own (a struct, a pointer,
// []byte, anything with its own MarshalJSON) is converted through its JSON
// encoding first, so no string inside it escapes hashing. Data therefore
// comes back as decoded JSON: map[string]any, []any, string, json.Number,
// bool and nil. An empty namespace comes back as "root".
func HashRequest(s Salt, r *Request) (*Request, error) {
	if r == nil {
		return nil, nil
	}
	e := getEncoder(s)
	defer e.release()
	if err := e.request(r, time.Time{}); err != nil {
		return nil, err
	}
	var w decoded
	if err := decodeBody(e.b, &w); err != nil {
		return nil, err
	}
	return &Request{Time: w.Time, Auth: w.Auth, Request: w.Request, Error: w.Error}, nil
}

// HashResponse is HashRequest for a response entry. In addition to the
// fields HashRequest hashes, it hashes every string under response data,
// the lease id, the issued token's client_token, accessor and metadata
// values, and response header values. Warnings are logged as is.
func HashResponse(s Salt, r *Response) (*Response, error) {
	if r == nil {
		return nil, nil
	}
	e := getEncoder(s)
	defer e.release()
	if err := e.response(r, time.Time{}); err != nil {
		return nil, err
	}
	var w decoded
	if err := decodeBody(e.b, &w); err != nil {
		return nil, err
	}
	return &Response{Time: w.Time, Auth: w.Auth, Request: w.Request, Response: w.Response, Error: w.Error}, nil
}

type decoded struct {
	Time     time.Time     `json:"time"`
	Auth     *Auth         `json:"auth"`
	Request  *RequestInfo  `json:"request"`
	Response *ResponseInfo `json:"response"`
	Error    string        `json:"error"`
}

func decodeBody(b []byte, w *decoded) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(w); err != nil {
		// A bug in the encoder, not in the caller's record.
		return fmt.Errorf("audit: decode hashed record: %w", err)
	}
	return nil
}
