package idempotency

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func TestParseKey(t *testing.T) {
	for _, ok := range []string{"a", "order-1", strings.Repeat("x", MaxKeyLen), " spaced ", "~!@#$%^&*()"} {
		if _, err := ParseKey(ok); err != nil {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", MaxKeyLen+1), "a\nb", "tab\t", "é", "\x7f", "\x00"} {
		if _, err := ParseKey(bad); err != ErrInvalidKey {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestFingerprint(t *testing.T) {
	base := Fingerprint("POST", "/api/contacts/create", url.Values{"a": {"1"}, "b": {"2"}}, []byte(`{}`))
	if Fingerprint("POST", "/api/contacts/create", url.Values{"b": {"2"}, "a": {"1"}}, []byte(`{}`)) != base {
		t.Error("query order changed the fingerprint")
	}
	for name, fp := range map[string]string{
		"method": Fingerprint("PUT", "/api/contacts/create", url.Values{"a": {"1"}, "b": {"2"}}, []byte(`{}`)),
		"path":   Fingerprint("POST", "/api/audiences/create", url.Values{"a": {"1"}, "b": {"2"}}, []byte(`{}`)),
		"query":  Fingerprint("POST", "/api/contacts/create", url.Values{"a": {"1"}}, []byte(`{}`)),
		"body":   Fingerprint("POST", "/api/contacts/create", url.Values{"a": {"1"}, "b": {"2"}}, []byte(`{ }`)),
		// Parts are length-prefixed, so moving bytes between them shows.
		"boundary": Fingerprint("POS", "T/api/contacts/create", url.Values{"a": {"1"}, "b": {"2"}}, []byte(`{}`)),
	} {
		if fp == base {
			t.Errorf("a different %s has the same fingerprint", name)
		}
	}
}

func TestJudge(t *testing.T) {
	r := Record{Claim: Claim{Fingerprint: "f", LeaseUntil: now.Add(time.Second)}, Status: InProgress, ExpiresAt: now.Add(Window)}
	done := r
	done.Status = Done
	cases := []struct {
		name string
		r    Record
		fp   string
		at   time.Time
		want Outcome
	}{
		{"running", r, "f", now, Running},
		{"lease over", r, "f", now.Add(time.Second), TakeOver},
		{"done", done, "f", now, Replay},
		{"other request", done, "g", now, Mismatch},
		{"other request while running", r, "g", now, Mismatch},
		{"expired", done, "g", now.Add(Window), Fresh},
		{"last moment", done, "f", now.Add(Window - time.Nanosecond), Replay},
	}
	for _, c := range cases {
		if got := Judge(c.r, c.fp, c.at); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// FuzzParseKey: a key is accepted exactly when it is 1 to 255 printable
// ASCII characters, and comes back unchanged.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"a", "order-1", strings.Repeat("x", 255), strings.Repeat("x", 256), "", "a\nb", "ключ", " a "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseKey(s)
		printable := len(s) > 0 && len(s) <= MaxKeyLen && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e })
		if printable != (err == nil) {
			t.Fatalf("%q: err %v, printable %v", s, err, printable)
		}
		if err == nil && got != s {
			t.Fatalf("%q changed to %q", s, got)
		}
		if err != nil && err != ErrInvalidKey {
			t.Fatalf("undocumented error %v", err)
		}
	})
}
