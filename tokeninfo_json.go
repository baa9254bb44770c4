package tokenvault

import (
	"encoding/json"
	"time"
)

// tokenInfoJSON is the JSON form of a TokenInfo. The names are the public
// format of the inspect command and of the HTTP API's GET /tokens/{token}, so
// they must not change.
type tokenInfoJSON struct {
	Token         string       `json:"token"`
	State         string       `json:"state"`
	Expired       bool         `json:"expired"`
	Revision      uint64       `json:"revision"`
	Kind          string       `json:"kind"`
	Format        string       `json:"format"`
	Brand         string       `json:"brand,omitempty"`
	First6        string       `json:"first6,omitempty"`
	Last4         string       `json:"last4,omitempty"`
	Deterministic bool         `json:"deterministic"`
	Scope         *string      `json:"scope,omitempty"`
	Created       string       `json:"created"`
	Updated       string       `json:"updated"`
	Expires       string       `json:"expires,omitempty"`
	SuspendedBy   []string     `json:"suspended_by,omitempty"`
	History       []changeJSON `json:"history"`
}

type changeJSON struct {
	Revision uint64 `json:"revision"`
	Type     string `json:"type"`
	From     string `json:"from"`
	To       string `json:"to"`
	Reason   string `json:"reason"`
	Actor    string `json:"actor"`
	Time     string `json:"time"`
}

// MarshalJSON encodes t as one object with lower_snake_case keys: token,
// state, expired, revision, kind, format, brand, first6, last4,
// deterministic, scope, created, updated, expires, suspended_by and
// history. States, kinds
// and formats are their String names and times are RFC 3339 in UTC. Empty
// brand, first6 and last4 are omitted, as is expires for a token that does
// not expire, and scope is present only for a deterministic token (it may be
// ""). suspended_by lists the parties that hold a suspension, omitted when
// none does. history is an array, empty rather than null, of objects with
// revision, type (the EventType name), from, to, reason, actor and time. The value is not part of a
// TokenInfo, so it cannot appear. A nil t encodes as null.
func (t *TokenInfo) MarshalJSON() ([]byte, error) {
	if t == nil {
		return []byte("null"), nil
	}

	out := tokenInfoJSON{
		Token:         t.Token,
		State:         t.State.String(),
		Expired:       t.Expired,
		Revision:      t.Revision,
		Kind:          t.Kind.String(),
		Format:        t.Format.String(),
		Brand:         string(t.Brand),
		First6:        t.First6,
		Last4:         t.Last4,
		Deterministic: t.Deterministic,
		Created:       formatJSONTime(t.Created),
		Updated:       formatJSONTime(t.Updated),
		SuspendedBy:   t.Suspenders,
		History:       make([]changeJSON, 0, len(t.History)),
	}
	if t.Deterministic {
		scope := t.Scope
		out.Scope = &scope
	}
	if !t.Expires.IsZero() {
		out.Expires = formatJSONTime(t.Expires)
	}

	for _, change := range t.History {
		out.History = append(out.History, changeJSON{
			Revision: change.Revision,
			Type:     ChangeEvent(t.Token, &change).Type.String(),
			From:     change.From.String(),
			To:       change.To.String(),
			Reason:   change.Reason,
			Actor:    change.Actor,
			Time:     formatJSONTime(change.Time),
		})
	}
	return json.Marshal(out)
}

// formatJSONTime returns t in RFC 3339 in UTC, with the fraction of a second
// when t has one.
func formatJSONTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}
