// Package rest is a Go client for Switchboard's server REST API, for
// function authors and servers that push to clients without a client event:
// a timer broadcasting prices, a job reporting that it finished.
//
// The API is compatible with Azure SignalR's data plane (2022-06-01), so
// this client speaks to Switchboard and, for the operations Azure has, to
// Azure SignalR Service too.
//
// Entry points: New takes a connection string
// ("Endpoint=…;AccessKey=…;Version=1.0;KeyId=…;"); Client.Hub names a hub,
// and from there Hub.Group, Hub.User and Hub.Connection name what to act on:
//
//	c, err := rest.New(os.Getenv("SWITCHBOARD_CONNECTION_STRING"))
//	chat := c.Hub("chat")
//	err = chat.Broadcast(ctx, "newMessage", "hello")
//	err = chat.Group("room1").Except(connID).Send(ctx, "newMessage", "hi")
//	err = chat.User("alice").AddToGroup(ctx, "room1", time.Hour)
//	ok, err := chat.Connection(connID).Exists(ctx)
//
// Every request carries a fresh short-lived HS256 token signed with the
// connection string's key (kid = its KeyId), its audience the request URL
// without the query, as the gateway requires. A keyless app (no access key in
// its configuration) uses NewKeyless instead, with a TokenSource giving its
// workload identity's OIDC token, which the gateway accepts when it trusts
// the issuer (docs/identity.md). Errors the gateway answers are
// returned as *Error with the status and Azure's ErrorDetail code and
// message.
//
// Concurrency: a Client and the Hub, Group, User and Connection values
// derived from it are immutable and safe for concurrent use.
package rest
