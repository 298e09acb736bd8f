// Package protocol implements the ASP.NET Core SignalR hub protocols, JSON
// and MessagePack, and the handshake: decoding what clients send and
// encoding what servers (and Go clients) send. It knows nothing about
// sockets; callers hand it whole transport frames (one WebSocket message,
// one POST body) and get bytes back.
//
// Entry points:
//
//   - Handshake: [ParseHandshakeRequest] (server side), [HandshakeOK] and
//     [AppendHandshakeError] (server answers), [AppendHandshakeRequest] and
//     [ParseHandshakeResponse] (client side).
//   - Decoding: [SplitMessages] cuts a frame at the record separator 0x1E and
//     [ParseMessage] decodes and validates one message into a [Message].
//   - Encoding: the Append* functions ([AppendInvocation], [AppendCompletion],
//     [AppendPing], ...) append one framed message to a buffer without
//     allocating, so a broadcast can be encoded once and the same bytes queued
//     to every recipient.
//   - MessagePack: [SplitBinaryMessages], [ParseBinaryMessage] and the
//     AppendBinary* encoders, for messages framed by a VarInt length.
//     Arguments, results and items are JSON on the gateway's side of both
//     protocols; msgpack_value.go maps them to MessagePack, binary data
//     included ([BinaryMarker]).
//   - [Codec] puts either protocol behind one interface ([JSON],
//     [MessagePack], [CodecFor]), so a connection holds the codec its
//     handshake chose and a broadcast is encoded once per codec in use.
//
// Errors wrap one of four sentinels: [ErrHandshake], [ErrHandshakeRejected],
// [ErrIncomplete] and [ErrMalformed]. Their texts say precisely what is wrong
// and contain no server internals, so they may be sent back to the client.
//
// Decoding is strict where the protocol is (property names are
// case-sensitive, "type" must be an integer) and lenient where it allows it
// (unknown properties are ignored, unknown message types decode to a Message
// with only Type set so callers can skip them, duplicate properties: the last
// one wins). A JSON null for an optional property counts as absent, except
// "result", where null is a value.
//
// Concurrency: the package has no state; every function is safe for
// concurrent use. A decoded Message never aliases the input bytes.
package protocol
