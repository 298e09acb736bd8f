// Command switchboard-bench is Switchboard's load tool (DESIGN §12). It
// speaks SignalR through package client against a running gateway and
// reports one workload per run, as a human table followed by one JSON line;
// both name the clients' transport and hub protocol:
//
//	switchboard-bench idle      --clients 19000 --rate 4000   # connect rate, gateway RSS per connection
//	switchboard-bench fanout    --clients 1000 --rate 300     # REST group sends: deliveries/s, loss, latency
//	switchboard-bench roundtrip --clients 100                 # closed-loop invokes through an upstream
//	switchboard-bench chat      --clients 1000 --senders 10 --rate 200  # invoke → sendToGroup reply
//
// Every workload runs on any transport and protocol the JS client allows:
// --transport websockets (the default), longpolling or serversentevents,
// --protocol json (the default) or messagepack (not over Server-Sent Events).
// A run uses exactly the transport asked for, never a fallback. Clients
// have no user id unless --users N gives client i the user
// bench-user-<i mod N> (--users equal to --clients: a user per client).
//
// The gateway is either running already (--url, --admin-key, and
// --connection-string to sign client and REST tokens; --pid to read its
// memory and CPU from /proc) or started by the tool with --spawn PATH (a
// switchboard binary, run with a fresh database in a temporary directory and
// stopped at the end). The tool creates the hub through the admin API
// (anonymous clients allowed) and, for fanout, roundtrip and chat, registers
// its own minimal upstream (a signed handler on 127.0.0.1 that answers at
// once) and removes it afterwards.
//
// Safety: every run is bounded in clients, rate and time, and the tool only
// targets 127.0.0.0/8; it refuses any other address. Connections are spread
// over several 127.0.0.x source addresses (--sources) so that many thousands
// of sockets do not exhaust one address pair's ephemeral ports.
//
// --cpuprofile FILE writes the tool's own CPU profile. On a machine the
// tool shares with the gateway, every core the tool uses is one the
// gateway does not get, so its profile says where a run's headroom went.
package main
