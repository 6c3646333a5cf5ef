// CI deployer: fetches a wrapped AppRole secret-id and reads its config.
name = "deployer"

path "/auth/approle/role/deploy/secret-id" {
  capabilities     = ["create", "update"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = "90s"
}

path "auth/approle/role/deploy/role-id" {
  capabilities = ["read"]
}

/* Writes must say who deployed and may not change the owner. */
path "secret/data/deploys/+" {
  capabilities        = ["create", "update"]
  required_parameters = ["data"]
  denied_parameters = {
    owner = []
  }
  comment = "deploy records"
}

path "transit/encrypt/deploy" {
  capabilities = ["update"]
  allowed_parameters = {
    plaintext   = []
    context     = []
    key_version = [1, 2]
  }
}
