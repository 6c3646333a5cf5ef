package approle

import "github.com/coffer-dev/coffer/internal/logical"

// errInvalidCredentials is the answer to an unknown role ID and to a wrong,
// expired or used-up secret ID alike.
var errInvalidCredentials = logical.BadRequest("invalid role or secret ID")
