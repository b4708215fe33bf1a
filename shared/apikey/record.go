package apikey

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"
)

// ErrNotFound means no stored key has the given hash.
var ErrNotFound = errors.New("apikey: no such key")

// Record is what is stored about a key: its hash and metadata, never the key.
type Record struct {
	Hash    string // hex SHA-256 of the key; the table's partition key
	ID      string // public identifier used to list, rotate and revoke
	OrgID   string
	Name    string
	Display string // the first DisplayLen characters, to tell keys apart
	Created time.Time
	// Expires is when the key stops working; zero means never. Storage
	// deletes expired keys days late, so every check compares it with now.
	Expires time.Time
	// Revoked is when the key was revoked; zero means it was not.
	Revoked time.Time
	// Rotated is when a successor replaced the key (it then expires after
	// a grace period); zero means it was not rotated.
	Rotated time.Time
}

// Usable reports whether a request made at now with this key is authorized.
func (r Record) Usable(now time.Time) bool {
	if !r.Revoked.IsZero() {
		return false
	}
	return r.Expires.IsZero() || now.Before(r.Expires)
}

// Issue makes a new key for an organization and the record to store for it.
// The key is returned once, to be shown to its owner; only the record is kept.
func Issue(orgID, name string, now, expires time.Time) (Key, Record, error) {
	k, err := New(nil)
	if err != nil {
		return "", Record{}, err
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", Record{}, err
	}
	return k, Record{
		Hash:    k.Hash(),
		ID:      "key_" + hex.EncodeToString(id[:]),
		OrgID:   orgID,
		Name:    name,
		Display: k.Display(),
		Created: now.UTC(),
		Expires: expires,
	}, nil
}
