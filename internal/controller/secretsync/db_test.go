package secretsync_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/coffer-dev/coffer/internal/controller/secretsync"
	"github.com/coffer-dev/coffer/internal/controller/secretsync/v1alpha1"
	"github.com/coffer-dev/coffer/internal/pgtest"
)

// TestDatabaseCredentials syncs dynamic PostgreSQL credentials: the lease
// is renewed in place while that buys enough time, and new credentials are
// issued and written before the old ones reach their maximum lifetime.
func TestDatabaseCredentials(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{})
	e := newEnv(t)
	e.tenant("team-a")
	if err := e.root.Sys().Mount("database", &vault.MountInput{Type: "database"}); err != nil {
		t.Fatalf("mount database: %v", err)
	}
	u, err := url.Parse(pg.SuperURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	e.write("database/config/pg", map[string]any{
		"plugin_name":    "postgresql-database-plugin",
		"connection_url": fmt.Sprintf("postgresql://{{username}}:{{password}}@%s/postgres?sslmode=disable", u.Host),
		"username":       "postgres", "password": pg.Password,
		"allowed_roles": "team-a",
	})
	const defaultTTL, maxTTL = 9 * time.Second, 14 * time.Second
	e.write("database/roles/team-a", map[string]any{
		"db_name":             "pg",
		"creation_statements": []string{`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`},
		"default_ttl":         int(defaultTTL / time.Second), "max_ttl": int(maxTTL / time.Second),
	})
	e.startController(secretsync.Options{})

	ss := &v1alpha1.SecretSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "pg"},
		Spec: v1alpha1.SecretSyncSpec{
			Coffer: v1alpha1.CofferRef{Auth: v1alpha1.CofferAuth{Kubernetes: &v1alpha1.KubernetesAuth{
				Role: "team-a", ServiceAccountName: "app", Audiences: []string{"coffer"},
			}}},
			Source: v1alpha1.Source{Database: &v1alpha1.DatabaseSource{Role: "team-a"}},
			Target: v1alpha1.Target{Template: &v1alpha1.Template{MergePolicy: "Merge", Data: map[string]string{
				"url": fmt.Sprintf("postgresql://{{ .username }}:{{ .password }}@%s/postgres?sslmode=disable", u.Host),
			}}},
		},
	}
	e.create(ss)

	var first *corev1.Secret
	eventually(t, 30*time.Second, func() error {
		s, err := e.secret("team-a", "pg")
		if err != nil {
			return err
		}
		if len(s.Data["username"]) == 0 || len(s.Data["password"]) == 0 {
			return fmt.Errorf("no credentials yet")
		}
		first = s
		return nil
	})
	st := e.waitReady("team-a", "pg", metav1.ConditionTrue, v1alpha1.ReasonSynced, "").Status
	if st.Lease == nil || !strings.HasPrefix(st.Lease.ID, "database/creds/team-a/") || st.Lease.DurationSeconds != int64(defaultTTL/time.Second) {
		t.Fatalf("status.lease = %+v", st.Lease)
	}
	issued := st.Lease.IssueTime.Time
	connect(t, string(first.Data["url"]))

	// The credentials die at issued+maxTTL at the latest; new ones must
	// be in the Secret before then.
	var second *corev1.Secret
	eventually(t, maxTTL+10*time.Second, func() error {
		s, err := e.secret("team-a", "pg")
		if err != nil {
			return err
		}
		if string(s.Data["username"]) == string(first.Data["username"]) {
			return fmt.Errorf("still the first credentials")
		}
		second = s
		return nil
	})
	// Lease times are stored with second precision.
	if seen, deadline := time.Now(), issued.Add(maxTTL+time.Second); seen.After(deadline) {
		t.Errorf("new credentials appeared at %s, after the first ones expired (%s)", seen.Format(time.RFC3339Nano), deadline.Format(time.RFC3339))
	}
	connect(t, string(second.Data["url"]))

	// Before re-issuing, the first lease was renewed in place once.
	var events corev1.EventList
	if err := e.c.List(e.ctx, &events, client.InNamespace("team-a")); err != nil {
		t.Fatal(err)
	}
	renewed := false
	for _, ev := range events.Items {
		if ev.InvolvedObject.Name == "pg" && ev.Reason == "LeaseRenewed" {
			renewed = true
		}
	}
	if !renewed {
		t.Error("no LeaseRenewed event: the lease was never renewed")
	}
}

func connect(t *testing.T, dsn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect with the synced credentials: %v", err)
	}
	defer conn.Close(ctx)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("query with the synced credentials: %v", err)
	}
}
