package api

import (
	"encoding/json"
	"net/http"
)

// writeJSON sends v with status. Encoding cannot fail for the types this
// package sends, so errors are left to the client noticing a short body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeDetail sends the documented error shape {"detail": "..."}.
func writeDetail(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]string{"detail": detail})
}

// FieldError is one validation failure, shaped as FastAPI (pydantic v2)
// reports it, so that clients of the documented service parse it unchanged.
type FieldError struct {
	Type string `json:"type"`
	Loc  []any  `json:"loc"`
	Msg  string `json:"msg"`
}

// writeInvalid sends 422 with every validation failure.
func writeInvalid(w http.ResponseWriter, errs []FieldError) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string][]FieldError{"detail": errs})
}
