// Package certfile loads TLS material from PEM files for the gateway's
// listeners and for its clients (upstreams, NATS), and keeps a certificate
// current when its files are replaced on disk, so renewing a certificate
// needs no restart and drops no connection.
//
// # Entry points
//
// [New] loads a certificate and key and returns a [Reloader], whose
// GetCertificate (servers) and GetClientCertificate (clients) go into a
// tls.Config. [Pool] reads a CA bundle. [ClientConfig] builds the
// tls.Config of a client from a CA file and an optional client certificate.
//
// # Reloading
//
// A Reloader checks its two files' size and modification time on every
// handshake (two stat calls, small beside the handshake itself) and loads
// them again when either changed. No goroutine and no timer are involved,
// so the first handshake after a replacement already gets the new
// certificate. A pair that does not load (a key written before its
// certificate, a file half-copied) is logged and the previous certificate
// stays in use until the pair loads again; established connections are
// never touched.
//
// # Concurrency
//
// A Reloader's methods are safe for concurrent use.
package certfile
