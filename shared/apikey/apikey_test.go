package apikey

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestNewParsesBack(t *testing.T) {
	for i := 0; i < 200; i++ {
		k, err := New(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != Len || !strings.HasPrefix(string(k), Prefix) {
			t.Fatalf("bad shape %d", len(k))
		}
		if _, err := Parse(string(k)); err != nil {
			t.Fatalf("own key rejected: %v", err)
		}
	}
}

func TestExtremeRandomnessKeepsWidth(t *testing.T) {
	for _, b := range []byte{0x00, 0xff} {
		k, err := New(bytes.NewReader(bytes.Repeat([]byte{b}, 32)))
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != Len {
			t.Fatalf("len %d for all-%x", len(k), b)
		}
		if _, err := Parse(string(k)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseRejects(t *testing.T) {
	good, _ := New(rand.Reader)
	g := string(good)
	flip := func(i int) string {
		b := []byte(g)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	cases := map[string]string{
		"empty":           "",
		"short":           g[:Len-1],
		"long":            g + "a",
		"wrong prefix":    "gh_" + g[3:],
		"body typo":       flip(10),
		"checksum typo":   flip(Len - 1),
		"bad alphabet":    g[:10] + "-" + g[11:],
		"non-ascii":       g[:10] + "é" + g[12:],
		"huge":            strings.Repeat("a", 10000),
		"space":           " " + g[1:],
		"leading space":   " " + g,
		"newline":         g[:Len-1] + "\n",
		"upper prefix":    "CL_" + g[3:],
		"nul":             g[:20] + "\x00" + g[21:],
		"checksum absent": g[:Len-checksumLen] + "000000",
	}
	for name, s := range cases {
		if _, err := Parse(s); err != ErrMalformed {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func TestHashIsHexSHA256(t *testing.T) {
	if got := Key("abc").Hash(); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("got %s", got)
	}
}

func TestKeyDoesNotLeakThroughFormatting(t *testing.T) {
	k, _ := New(nil)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "key", k)
	fmt.Fprintf(&buf, "%v %s", k, k)
	if strings.Contains(buf.String(), string(k)) {
		t.Fatalf("raw key leaked: %s", buf.String())
	}
	if !strings.Contains(buf.String(), k.Display()) {
		t.Fatal("display prefix missing")
	}
}

func FuzzParse(f *testing.F) {
	k, _ := New(nil)
	f.Add(string(k))
	f.Add("")
	f.Add("cl_")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse(s)
		if err == nil && string(got) != s {
			t.Fatal("parse changed the key")
		}
		if err == nil && len(s) != Len {
			t.Fatal("accepted wrong length")
		}
	})
}
