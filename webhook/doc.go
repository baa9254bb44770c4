// Package webhook delivers a tokenvault.Vault's events to HTTP endpoints as
// signed webhooks, and verifies such webhooks on the receiving side.
//
//	endpoints, err := webhook.LoadEndpoints("tokenvault.webhooks")
//	d := webhook.NewDispatcher(v, endpoints, &webhook.Options{OnError: logFailure})
//	err = d.Run(ctx) // until ctx is done or v is closed
//
// # Requests
//
// Each event is one POST request with Content-Type application/json and a
// body of the JSON form of Payload:
//
//	{"id":"evt_tok_..._1","seq":42,"token":"tok_...","revision":1,"type":"suspended",
//	 "from":"active","to":"suspended","reason":"card reported lost","actor":"ops",
//	 "time":"2025-01-02T03:04:05.123456789Z"}
//
// The request carries the signature in Tokenvault-Signature:
//
//	Tokenvault-Signature: t=1735787045,v1=<64 lowercase hexadecimal digits>
//
// where t is the Unix time of the attempt in seconds and v1 is the lowercase
// hexadecimal HMAC-SHA256, under the endpoint's secret, of t, a period and
// the body. The header may carry several v1 values, for secret rotation.
// The request also carries the event's ID in Tokenvault-Event-Id, for
// routing and logging only: the signature does not cover that header.
// Receivers in Go call VerifyRequest or Verify. Receivers in other languages
// compute the HMAC over the raw body bytes before parsing them, and compare
// it in constant time.
//
// # Delivery
//
// A 2xx response acknowledges the event. Any other status, redirects
// included, a network error or a timeout (Options.Timeout) is a failed
// attempt, retried with the backoff of Vault.Subscribe. After
// Options.MaxAttempts failed attempts the event becomes a dead letter of that
// endpoint (Vault.DeadLetters) and the endpoint gets the next event;
// Vault.Redeliver queues a dead letter again.
//
// Delivery is at least once and in outbox (Seq) order per endpoint, with one
// exception: a dead letter that Vault.Redeliver queues again is sent after
// the events delivered since it was set aside, which can include later
// revisions of the same token. A receiver that needs each token's events in
// order keeps the highest "revision" it has handled per token and ignores
// events with a lower one. A receiver can also get an event twice, after a
// timeout or a restart. It drops repeats by the body's "id" field, which the
// signature covers, and never by the Tokenvault-Event-Id header, which it
// does not.
//
// A new endpoint, or one whose ID changed, starts at the first event of the
// outbox, so it receives the vault's whole history before any new event.
//
// When an endpoint's subscription fails, for example because the store
// cannot write the endpoint's cursor, Dispatcher.Run subscribes it again
// after a backoff and reports the failure to Options.OnSubscriptionError.
//
// # Security model
//
// Payloads never contain a token's value, because the outbox does not store values.
// Endpoint secrets never appear in errors, in the String, Format, LogValue
// and MarshalJSON of Endpoint, or in the arguments of OnError and
// OnSubscriptionError, and LoadEndpoints rejects an endpoints file that
// other users can read.
//
// The signature proves that the sender has the secret and that the body
// and timestamp were not changed. Verify rejects timestamps more than the
// tolerance (DefaultTolerance, 5 minutes) from the receiver's clock, which
// bounds how long a captured request can be replayed. Within that window
// only the body's "id" field detects a replay. A replay with a changed
// Tokenvault-Event-Id header still verifies, because the signature does not
// cover the header.
//
// # Caveats
//
// The package never logs. Options.OnError reports each failed attempt, and
// Options.OnSubscriptionError each failed subscription.
//
// The outbox is never pruned: it keeps every event for as long as the vault
// exists and grows with each change. A new endpoint is sent all of it, one
// request per event, before it gets the events written after it was added.
//
// Each endpoint's cursor lives in the vault, so a Dispatcher needs the vault
// open, and with a bbolt file no other process can open it meanwhile.
//
// Over plain http the payloads, tokens included, cross the network in clear
// text. Use https for any endpoint beyond the local host.
package webhook
