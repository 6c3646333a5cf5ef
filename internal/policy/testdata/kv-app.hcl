# Team "app": full access to its own KV v2 secrets, read-only on shared ones.
path "secret/data/app/*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list"]
}

path "secret/metadata/app/*" {
  capabilities = ["read", "list", "delete"]
}

# Every environment's shared config, read only.
path "secret/data/+/shared/config" {
  capabilities = ["read"]
}

# The production signing key is off limits even inside app/.
path "secret/data/app/prod/signing-key" {
  capabilities = ["deny"]
}

# Database credentials for the app roles only.
path "database/creds/app-*" {
  capabilities = ["read"]
}

# Token creation restricted to the app policies, with any TTL.
path "auth/token/create" {
  capabilities = ["update"]
  allowed_parameters = {
    "policies" = ["app-*"]
    "ttl"      = []
    "*"        = []
  }
  denied_parameters = {
    "no_parent" = [true]
  }
}
