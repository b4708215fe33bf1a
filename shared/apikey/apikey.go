// Package apikey defines the format of ContactLevel API keys: how they are
// made, recognised without a database call, hashed for storage and shown.
//
// A key is "cl_" + 43 base62 characters carrying 256 random bits + 6 base62
// characters of CRC-32 checksum over everything before it, 52 characters in
// all. The fixed shape lets the authorizer reject anything that cannot be a
// key before it spends a DynamoDB read, and the checksum catches typos and
// lets secret scanners recognise leaked keys with few false positives, as
// GitHub's tokens do.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"log/slog"
	"math/big"
)

// Prefix starts every key so that people and secret scanners can tell what it is.
const Prefix = "cl_"

const (
	bodyLen     = 43 // ceil(256 / log2(62))
	checksumLen = 6  // ceil(32 / log2(62))
	// Len is the exact length of every key.
	Len = len(Prefix) + bodyLen + checksumLen
	// DisplayLen is how many leading characters of a key may be shown in
	// listings so that a person can tell keys apart; it reveals 24 bits out of 256.
	DisplayLen = len(Prefix) + 4
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrMalformed says a string cannot be a key; no lookup is needed to know it is invalid.
var ErrMalformed = errors.New("apikey: malformed key")

// Key is a raw API key. It exists only between issue and the one time it is
// shown, and between a request's header and its hash.
type Key string

// New makes a key from 256 bits read from r (crypto/rand.Reader when r is nil).
func New(r io.Reader) (Key, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	head := Prefix + base62(new(big.Int).SetBytes(b[:]), bodyLen)
	return Key(head + checksum(head)), nil
}

// Parse checks that s has the shape of a key: prefix, length, alphabet and
// checksum. It does no I/O.
func Parse(s string) (Key, error) {
	if len(s) != Len || s[:len(Prefix)] != Prefix {
		return "", ErrMalformed
	}
	for i := len(Prefix); i < Len; i++ {
		if !isBase62(s[i]) {
			return "", ErrMalformed
		}
	}
	head := s[:Len-checksumLen]
	var sum [checksumLen]byte
	if string(appendChecksum(sum[:0], head)) != s[Len-checksumLen:] {
		return "", ErrMalformed
	}
	return Key(s), nil
}

// Hash is what the keys table stores and looks keys up by: the hex SHA-256
// of the key. 256 random bits make a slow hash unnecessary.
func (k Key) Hash() string {
	sum := sha256.Sum256([]byte(k))
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// Display is the short prefix safe to show in key listings.
func (k Key) Display() string {
	if len(k) < DisplayLen {
		return ""
	}
	return string(k[:DisplayLen])
}

// String keeps raw keys out of logs and fmt output by accident; use string(k)
// for the one time a key is really shown.
func (k Key) String() string { return k.Display() + "…" }

// LogValue redacts the key when it is passed to log/slog.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// checksum is the CRC-32 of head in checksumLen base62 digits.
func checksum(head string) string {
	var out [checksumLen]byte
	return string(appendChecksum(out[:0], head))
}

// appendChecksum appends head's checksum to dst. Plain integer arithmetic
// and a caller's buffer let Parse, on the authorizer's path, check it
// without allocating.
func appendChecksum(dst []byte, head string) []byte {
	n := crc32.ChecksumIEEE([]byte(head))
	var out [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = alphabet[n%62]
		n /= 62
	}
	return append(dst, out[:]...)
}

// base62 writes n in exactly width digits, most significant first.
func base62(n *big.Int, width int) string {
	out := make([]byte, width)
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, base, mod)
		out[i] = alphabet[mod.Int64()]
	}
	return string(out)
}

func isBase62(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}
