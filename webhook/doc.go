// Package webhook delivers a tokenvault.Vault's events to HTTP endpoints as
// signed webhooks, and verifies such webhooks on the receiving side.
//
//	endpoints, err := webhook.LoadEndpoints("tokenvault.webhooks")
//	d := webhook.NewDispatcher(v, endpoints, &webhook.Options{OnError: logFailure})
//	err = d.Run(ctx) // until ctx is done
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
// The request carries the event's ID in Tokenvault-Event-Id and the signature
// in Tokenvault-Signature:
//
//	Tokenvault-Signature: t=1735787045,v1=<64 lowercase hexadecimal digits>
//
// where t is the Unix time of the attempt in seconds and v1 is the lowercase
// hexadecimal HMAC-SHA256, under the endpoint's secret, of t, a period and
// the body. The header may carry several v1 values, for secret rotation.
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
// Delivery is at least once and in outbox order per endpoint, so the events
// of one token arrive in revision order. A receiver can still get an event
// twice, after a timeout or a restart, and drops repeats by the event ID.
//
// # Security model
//
// Payloads never contain a token's value, because the outbox does not store values.
// Endpoint secrets never appear in errors, in the String, Format, LogValue
// and MarshalJSON of Endpoint, or in OnError's arguments, and LoadEndpoints
// rejects an endpoints file that other users can read.
//
// The signature proves that the sender has the secret and that the body
// and timestamp were not changed. Verify rejects timestamps more than the
// tolerance (DefaultTolerance, 5 minutes) from the receiver's clock, which
// bounds how long a captured request can be replayed. Within that window
// only the event ID detects a replay.
//
// # Caveats
//
// The package never logs; Options.OnError reports each failed attempt.
//
// Each endpoint's cursor lives in the vault, so a Dispatcher needs the vault
// open, and with a bbolt file no other process can open it meanwhile.
//
// Over plain http the payloads, tokens included, cross the network in clear
// text. Use https for any endpoint beyond the local host.
package webhook
