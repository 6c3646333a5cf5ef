package core

import (
	"context"
	"errors"
	"testing"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage/fault"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

// loginBackend is an auth method whose "login" path issues a token with
// the default policy to anyone.
type loginBackend struct{}

func (loginBackend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if req.MountPath != "login" {
		return nil, logical.ErrUnsupportedPath
	}
	return &logical.Response{Auth: &logical.Auth{DisplayName: "someone", Metadata: map[string]string{}}}, nil
}
func (loginBackend) UnauthenticatedPaths() []string { return []string{"login"} }
func (loginBackend) SudoPaths() []string            { return nil }

// When the tokens of an auth method cannot be revoked (storage refusing
// writes), disabling it is refused and the method stays, its tokens still
// working; once storage recovers, disabling revokes them.
func TestDisableAuthRefusedWhenTokensStay(t *testing.T) {
	ctx := context.Background()
	fs := fault.New(inmem.New(), fault.Options{WritesOnly: true})
	c, err := New(Config{Storage: fs, AuthMethods: map[string]logical.Factory{
		"login": func(context.Context, *logical.BackendConfig) (logical.Backend, error) { return loginBackend{}, nil },
	}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Init(ctx, InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SubmitUnsealShare(ctx, res.Keys[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.Mount(ctx, true, &MountEntry{Path: "people/", Type: "login"}); err != nil {
		t.Fatal(err)
	}
	var toks []string
	for range 2 {
		resp, err := c.HandleRequest(ctx, &logical.Request{Operation: logical.UpdateOperation, Path: "auth/people/login", Data: map[string]any{}})
		if err != nil || resp.Auth == nil || resp.Auth.ClientToken == "" {
			t.Fatalf("login: %v %v", resp, err)
		}
		toks = append(toks, resp.Auth.ClientToken)
	}
	works := func(tok string) error {
		_, err := c.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "auth/token/lookup-self", ClientToken: tok, Data: map[string]any{}})
		return err
	}

	fs.SetFailPercent(100)
	err = c.Unmount(ctx, true, "people")
	var ire *logical.InvalidRequestError
	if !errors.As(err, &ire) {
		t.Fatalf("disable with failing storage = %v, want a 400", err)
	}
	fs.SetFailPercent(0)
	if c.auths.match("people/login") == nil {
		t.Fatal("the auth method is gone although its tokens were not revoked")
	}
	for _, tok := range toks {
		if err := works(tok); err != nil {
			t.Fatalf("token after the refused disable: %v", err)
		}
	}

	if err := c.Unmount(ctx, true, "people"); err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if err := works(tok); !errors.Is(err, logical.ErrPermissionDenied) {
			t.Fatalf("token after disable: %v, want permission denied", err)
		}
	}
}
