// Package actions is the one vocabulary of things the gateway can be asked to
// do: broadcast, send to a user, group or connection, change group membership
// and close connections. Webhook replies, the REST API's batch endpoint and the
// cluster bus all carry these values, so the package has no dependencies beyond
// the standard library and is safe to import from function code.
//
// An Action is plain data; Validate reports what is wrong with one before the
// gateway runs it. Values are immutable once built and safe to share.
package actions
