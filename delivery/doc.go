// Package delivery is the gateway's webhook delivery engine: it sends each
// client event to the upstreams registered for its hub and brings their
// replies back. Function authors never import it; their side of the
// contract is package upstream.
//
// # Entry points
//
//   - NewDispatcher starts a Dispatcher, which implements the gateway's
//     Webhooks interface: Call delivers a blocking event (connect, message)
//     to the first matching upstream and returns its reply; Notify makes a
//     notification (connected, disconnected) durable in the outbox and
//     returns, and workers deliver it later, in order per connection and
//     upstream, retrying with backoff until OutboxTTL.
//   - SetTargets replaces the registered upstreams (Target: URL template,
//     event Filter, timeout, signing secrets) whenever the configuration
//     changes.
//   - ValidateTemplate, ParseFilter and ExpandURL check and apply URL
//     templates and event filters (ExpandURL refuses a value that would add
//     a path segment, make a dot segment or leave the template's path);
//     CheckRegistration sends the CloudEvents abuse-protection OPTIONS check
//     before an upstream is saved.
//   - Status and DeliveryLog report breakers, outbox depth and each
//     upstream's recent deliveries for the admin API.
//   - AddressPolicy says which networks upstreams may be at (link-local and
//     metadata addresses are refused by default); CheckAddress applies it
//     when an upstream is registered, and the dispatcher's client applies
//     it again on every dial, resolving names itself.
//
// Every request is built here (upstream.Event encoded as JSON, CloudEvents
// ce-* headers, a Standard Webhooks signature made with upstream.Secrets)
// and every answer is read here (upstream.ParseReply). Each upstream has a
// circuit breaker (gobreaker): an open one fails blocking events at once and
// pauses its outbox lane. Only upstream faults count against a breaker (no
// connection, a timeout, a broken-off reply, 5xx, 408): an event the
// caller's own input cannot turn into a safe request fails with ErrRefused
// before the breaker is asked. An upstream that answers 410 Gone is
// disabled and OnDisable persists that.
//
// A Target with Azure set is of the azure-signalr profile (ProfileAzure,
// azure.go): its requests are those Azure SignalR Service sends its
// upstreams (X-ASRS-* headers, AzureSignature over the connection id with
// the access keys, Azure's bodies) and its answers are read as Azure reads
// them; ParseAzureRules' template rules choose its events, and of several
// such upstreams only the first that matches gets a notification. Outbox,
// breakers and delivery log are the same for both profiles.
//
// Call's errors (ErrUpstream, ErrCircuitOpen under errors.Is) carry the
// whole cause for the gateway log and the delivery log, and a short
// ClientMessage for the client (gateway.ClientError): the upstream's name
// and the kind of failure, never an address, a transport error or the
// upstream's answer body.
//
// # Concurrency
//
// A Dispatcher is safe for concurrent use. It runs Workers delivery
// goroutines and one committer that writes the outbox to its OutboxStore in
// group commits; Close stops them. The outbox's state is guarded by one
// mutex (outbox.mu), never held during a request or a store write.
package delivery
