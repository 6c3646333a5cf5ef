package core

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/version"
)

// The unauthenticated, never-audited system endpoints.

func (c *Core) handleInit(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	switch req.Operation {
	case logical.ReadOperation:
		init, err := c.Initialized(ctx)
		if err != nil {
			return nil, c.errorInternal("read init state", err)
		}
		return &logical.Response{NoEnvelope: true, Data: map[string]any{"initialized": init}}, nil
	case logical.CreateOperation, logical.UpdateOperation:
	default:
		return nil, logical.ErrUnsupportedOperation
	}
	var p struct {
		SecretShares      *int     `json:"secret_shares"`
		SecretThreshold   *int     `json:"secret_threshold"`
		RecoveryShares    *int     `json:"recovery_shares"`
		RecoveryThreshold *int     `json:"recovery_threshold"`
		PGPKeys           []string `json:"pgp_keys"`
		RecoveryPGPKeys   []string `json:"recovery_pgp_keys"`
		RootTokenPGPKey   string   `json:"root_token_pgp_key"`
		StoredShares      int      `json:"stored_shares"`
	}
	if err := decodeData(req.Data, &p); err != nil {
		return nil, err
	}
	if len(p.PGPKeys) > 0 || len(p.RecoveryPGPKeys) > 0 || p.RootTokenPGPKey != "" {
		return nil, logical.BadRequest("PGP-encrypted key shares are not supported")
	}
	ir := InitRequest{SecretShares: 5, SecretThreshold: 3, RecoveryShares: 5, RecoveryThreshold: 3}
	if p.SecretShares != nil {
		ir.SecretShares = *p.SecretShares
	}
	if p.SecretThreshold != nil {
		ir.SecretThreshold = *p.SecretThreshold
	}
	if p.RecoveryShares != nil {
		ir.RecoveryShares = *p.RecoveryShares
	}
	if p.RecoveryThreshold != nil {
		ir.RecoveryThreshold = *p.RecoveryThreshold
	}
	res, err := c.Init(ctx, ir)
	if err != nil {
		return nil, err
	}
	hexs, b64s := encodeShares(res.Keys)
	rhex, rb64 := encodeShares(res.RecoveryKeys)
	return &logical.Response{NoEnvelope: true, Data: map[string]any{
		"keys":                 hexs,
		"keys_base64":          b64s,
		"recovery_keys":        rhex,
		"recovery_keys_base64": rb64,
		"root_token":           res.RootToken,
	}}, nil
}

func encodeShares(shares [][]byte) (hexs, b64s []string) {
	hexs, b64s = []string{}, []string{}
	for _, s := range shares {
		hexs = append(hexs, hex.EncodeToString(s))
		b64s = append(b64s, base64.StdEncoding.EncodeToString(s))
		clear(s)
	}
	return hexs, b64s
}

func (c *Core) sealStatusData(ctx context.Context) (map[string]any, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"type":          st.Type,
		"initialized":   st.Initialized,
		"sealed":        st.Sealed,
		"t":             st.T,
		"n":             st.N,
		"progress":      st.Progress,
		"nonce":         st.Nonce,
		"version":       version.Version,
		"build_date":    version.BuildDate,
		"migration":     false,
		"cluster_name":  c.clusterName,
		"cluster_id":    st.ClusterID,
		"recovery_seal": st.Recovery,
		"storage_type":  c.storageType,
	}, nil
}

func (c *Core) handleSealStatus(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if req.Operation != logical.ReadOperation {
		return nil, logical.ErrUnsupportedOperation
	}
	d, err := c.sealStatusData(ctx)
	if err != nil {
		return nil, err
	}
	return &logical.Response{NoEnvelope: true, Data: d}, nil
}

func (c *Core) handleUnseal(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if req.Operation != logical.UpdateOperation && req.Operation != logical.CreateOperation {
		return nil, logical.ErrUnsupportedOperation
	}
	var p struct {
		Key     string `json:"key"`
		Reset   bool   `json:"reset"`
		Migrate bool   `json:"migrate"`
	}
	if err := decodeData(req.Data, &p); err != nil {
		return nil, err
	}
	init, err := c.Initialized(ctx)
	if err != nil {
		return nil, c.errorInternal("read init state", err)
	}
	if !init {
		return nil, logical.BadRequest("%s", ErrNotInitialized.Error())
	}
	switch {
	case p.Reset:
		c.ResetUnseal()
	case p.Migrate:
		return nil, logical.BadRequest("seal migration is not supported")
	case p.Key == "":
		return nil, logical.BadRequest("'key' must be specified in request body as JSON, or 'reset' set to true")
	default:
		share, err := ParseKeyShare(p.Key)
		if err != nil {
			return nil, err
		}
		err = c.SubmitUnsealShare(ctx, share)
		clear(share)
		if err != nil {
			return nil, err
		}
	}
	d, err := c.sealStatusData(ctx)
	if err != nil {
		return nil, err
	}
	return &logical.Response{NoEnvelope: true, Data: d}, nil
}

// healthCodes are sys/health's query overrides with Vault's defaults.
var healthCodes = []struct {
	name string
	def  int
}{
	{"activecode", http.StatusOK},
	{"standbycode", http.StatusTooManyRequests},
	{"drsecondarycode", 472},
	{"performancestandbycode", 473},
	{"sealedcode", http.StatusServiceUnavailable},
	{"uninitcode", http.StatusNotImplemented},
	{"removedcode", 530},
	{"haunhealthycode", 474},
}

func (c *Core) handleHealth(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if req.Operation != logical.ReadOperation && req.Operation != logical.HeadOperation {
		return nil, logical.ErrUnsupportedOperation
	}
	codes := make(map[string]int, len(healthCodes))
	for _, hc := range healthCodes {
		codes[hc.name] = hc.def
		if v, ok := req.Query[hc.name]; ok && len(v) > 0 && v[0] != "" {
			n, err := strconv.Atoi(v[0])
			if err != nil || n < 1 || n > 999 {
				return nil, logical.BadRequest("bad code for %s: %q", hc.name, v[0])
			}
			codes[hc.name] = n
		}
	}
	for _, b := range []string{"standbyok", "perfstandbyok"} {
		if v, ok := req.Query[b]; ok && len(v) > 0 && v[0] != "" {
			if _, err := strconv.ParseBool(v[0]); err != nil {
				return nil, logical.BadRequest("bad value for %s: %q", b, v[0])
			}
		}
	}
	init, err := c.Initialized(ctx)
	if err != nil {
		return nil, c.errorInternal("read init state", err)
	}
	sealed := c.Sealed()
	status := codes["activecode"]
	switch {
	case !init:
		status = codes["uninitcode"]
	case sealed:
		status = codes["sealedcode"]
	}
	var clusterID string
	if init {
		if sc, err := c.sealConfig(ctx); err == nil && sc != nil {
			clusterID = sc.ClusterID
		}
	}
	d := map[string]any{
		"initialized":                  init,
		"sealed":                       sealed,
		"standby":                      false,
		"performance_standby":          false,
		"replication_performance_mode": "disabled",
		"replication_dr_mode":          "disabled",
		"server_time_utc":              time.Now().UTC().Unix(),
		"version":                      version.Version,
		"enterprise":                   false,
		"echo_duration_ms":             0,
		"clock_skew_ms":                0,
	}
	if init {
		d["cluster_name"] = c.clusterName
		d["cluster_id"] = clusterID
	}
	if !sealed {
		if failing := c.auditFailing(); len(failing) > 0 {
			// Detail for operators: requests are refused unless another
			// device records them.
			d["audit_devices_failing"] = failing
		}
	}
	return &logical.Response{NoEnvelope: true, Status: status, Data: d}, nil
}

func (c *Core) handleLeader(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if req.Operation != logical.ReadOperation {
		return nil, logical.ErrUnsupportedOperation
	}
	return &logical.Response{NoEnvelope: true, Data: map[string]any{
		"ha_enabled":                          false,
		"is_self":                             false,
		"active_time":                         "0001-01-01T00:00:00Z",
		"leader_address":                      "",
		"leader_cluster_address":              "",
		"performance_standby":                 false,
		"performance_standby_last_remote_wal": 0,
		"raft_committed_index":                0,
		"raft_applied_index":                  0,
	}}, nil
}
