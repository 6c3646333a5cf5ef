package database

// ScramVerifierWith exposes the SCRAM verifier with a chosen salt to the
// external tests, which check it against PostgreSQL's.
var ScramVerifierWith = scramVerifierWith
