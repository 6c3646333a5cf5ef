listener "tcp" {
  address       = "0.0.0.0:8201"
  tls_cert_file = "/etc/coffer/tls.crt"
  tls_key_file  = "/etc/coffer/tls.key"
}

storage "bolt" {
  path = "/var/lib/coffer/coffer.db"
}

seal "static" {
  key_file = "/etc/coffer/unseal.key"
}

log_level            = "debug"
log_format           = "json"
max_request_size     = 1048576
max_request_duration = "30s"
audit_dir            = "/var/log/coffer"
cluster_name         = "prod"
lease_revocation_workers = 8
