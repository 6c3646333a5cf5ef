package compat

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/coffer-dev/coffer/internal/coffertest"
)

// TestKVv2 drives every KV v2 operation through the official client's KVv2
// helper against the dev server's secret/ mount.
func TestKVv2(t *testing.T) {
	srv := coffertest.StartDev(t)
	c := newClient(t, srv.Addr, srv.RootToken)
	ctx := context.Background()
	kv := c.KVv2("secret")

	s, err := kv.Put(ctx, "app/db", map[string]any{"user": "app", "password": "s3cr3t"})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if s.VersionMetadata.Version != 1 {
		t.Fatalf("Put version = %d, want 1", s.VersionMetadata.Version)
	}
	got, err := kv.Get(ctx, "app/db")
	if err != nil || got.Data["password"] != "s3cr3t" || got.VersionMetadata.Version != 1 {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := kv.Put(ctx, "app/db", map[string]any{"user": "app", "password": "v2"}, vault.WithCheckAndSet(1)); err != nil {
		t.Fatalf("Put cas=1: %v", err)
	}
	_, err = kv.Put(ctx, "app/db", map[string]any{"x": "y"}, vault.WithCheckAndSet(1))
	wantStatus(t, err, 400, "current version is 2")

	if _, err := kv.Patch(ctx, "app/db", map[string]any{"password": "v3"}); err != nil {
		t.Fatalf("Patch: %v", err)
	}
	got, err = kv.Get(ctx, "app/db")
	if err != nil || got.Data["password"] != "v3" || got.Data["user"] != "app" || got.VersionMetadata.Version != 3 {
		t.Fatalf("Get after patch = %+v, %v", got, err)
	}
	old, err := kv.GetVersion(ctx, "app/db", 1)
	if err != nil || old.Data["password"] != "s3cr3t" {
		t.Fatalf("GetVersion(1) = %+v, %v", old, err)
	}
	_, err = kv.GetVersion(ctx, "app/db", 99)
	if !errors.Is(err, vault.ErrSecretNotFound) {
		t.Fatalf("GetVersion(99) error = %v, want ErrSecretNotFound", err)
	}

	// Soft delete, read (deleted), undelete, destroy.
	if err := kv.Delete(ctx, "app/db"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	// As in Vault, a deleted version reads as data nil with its metadata.
	del, err := kv.Get(ctx, "app/db")
	if err != nil || del.Data != nil || del.VersionMetadata == nil || del.VersionMetadata.DeletionTime.IsZero() {
		t.Fatalf("Get after delete = %+v, %v; want nil data and a deletion time", del, err)
	}
	if err := kv.Undelete(ctx, "app/db", []int{3}); err != nil {
		t.Fatalf("Undelete: %v", err)
	}
	if got, err := kv.Get(ctx, "app/db"); err != nil || got.Data["password"] != "v3" {
		t.Fatalf("Get after undelete = %+v, %v", got, err)
	}
	if err := kv.Destroy(ctx, "app/db", []int{1}); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	des, err := kv.GetVersion(ctx, "app/db", 1)
	if err != nil || des.Data != nil || !des.VersionMetadata.Destroyed {
		t.Fatalf("GetVersion(1) after destroy = %+v, %v; want nil data, destroyed", des, err)
	}
	if err := kv.Undelete(ctx, "app/db", []int{1}); err != nil {
		t.Fatalf("Undelete destroyed: %v", err)
	}
	if des, err := kv.GetVersion(ctx, "app/db", 1); err != nil || des.Data != nil {
		t.Fatalf("destroyed version readable after undelete: %+v, %v", des, err)
	}

	// Metadata.
	if err := kv.PutMetadata(ctx, "app/db", vault.KVMetadataPutInput{MaxVersions: 5, CustomMetadata: map[string]any{"owner": "team-a"}}); err != nil {
		t.Fatalf("PutMetadata: %v", err)
	}
	md, err := kv.GetMetadata(ctx, "app/db")
	if err != nil || md.MaxVersions != 5 || md.CurrentVersion != 3 || md.CustomMetadata["owner"] != "team-a" || len(md.Versions) != 3 {
		t.Fatalf("GetMetadata = %+v, %v", md, err)
	}
	list, err := c.Logical().List("secret/metadata/app")
	if err != nil || list == nil || strings.Join(asList(list.Data["keys"]), ",") != "db" {
		t.Fatalf("List = %v, %v", list, err)
	}
	if err := kv.DeleteMetadata(ctx, "app/db"); err != nil {
		t.Fatalf("DeleteMetadata: %v", err)
	}
	if _, err := kv.Get(ctx, "app/db"); !errors.Is(err, vault.ErrSecretNotFound) {
		t.Fatalf("Get after DeleteMetadata error = %v, want ErrSecretNotFound", err)
	}

	// Bad input.
	_, err = c.Logical().Write("secret/data/a", map[string]any{"nodata": 1})
	wantStatus(t, err, 400, "")
	req := c.NewRequest(http.MethodGet, "/v1/secret/data/a/../b")
	_, err = c.RawRequest(req)
	if err == nil {
		t.Fatalf("path with .. accepted")
	}
}

// TestKVv1 covers a version 1 mount enabled through sys/mounts.
func TestKVv1(t *testing.T) {
	srv := coffertest.StartDev(t)
	c := newClient(t, srv.Addr, srv.RootToken)
	if err := c.Sys().Mount("kv1", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatalf("Mount: %v", err)
	}
	mounts, err := c.Sys().ListMounts()
	if err != nil || mounts["kv1/"] == nil || mounts["kv1/"].Type != "kv" || mounts["secret/"].Options["version"] != "2" {
		t.Fatalf("ListMounts = %v, %v", mounts, err)
	}
	ctx := context.Background()
	if err := c.KVv1("kv1").Put(ctx, "a/b", map[string]any{"k": "v"}); err != nil {
		t.Fatalf("KVv1 Put: %v", err)
	}
	s, err := c.KVv1("kv1").Get(ctx, "a/b")
	if err != nil || s.Data["k"] != "v" {
		t.Fatalf("KVv1 Get = %+v, %v", s, err)
	}
	if _, err := c.KVv1("kv1").Get(ctx, "missing"); !errors.Is(err, vault.ErrSecretNotFound) {
		t.Fatalf("KVv1 Get missing error = %v", err)
	}
	if err := c.Sys().Unmount("kv1"); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	resp, err := c.RawRequest(c.NewRequest(http.MethodGet, "/v1/kv1/a/b"))
	if resp != nil {
		resp.Body.Close()
	}
	wantStatus(t, err, 404, "no handler for route")
	wantStatus(t, c.Sys().Mount("sys/x", &vault.MountInput{Type: "kv"}), 400, "reserved")
	wantStatus(t, c.Sys().Mount("other", &vault.MountInput{Type: "nope"}), 400, "unknown")
}

func asList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}
