package api

import (
	"context"
	"log/slog"
	"net/http"
)

// outcome collects what the access log reports about one request.
type outcome struct {
	status  int
	charged int64
	result  string // what became of the charge: charged, refunded, replayed, ...
}

type outcomeKey struct{}

type statusWriter struct {
	http.ResponseWriter
	o *outcome
}

func (w statusWriter) WriteHeader(status int) {
	w.o.status = status
	w.ResponseWriter.WriteHeader(status)
}

// logged writes one structured line per request: who, what, the status and
// the credits charged. It never logs headers, so never the key.
func (s *server) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := &outcome{status: http.StatusOK}
		next.ServeHTTP(statusWriter{w, o}, r.WithContext(context.WithValue(r.Context(), outcomeKey{}, o)))
		c, _ := callerFrom(r)
		if o.result == "" {
			o.result = "served"
			if o.status >= 400 {
				o.result = "refused"
			}
		}
		level := slog.LevelInfo
		if o.status >= 500 {
			level = slog.LevelError
		}
		s.Log.LogAttrs(r.Context(), level, "request",
			slog.String("request_id", c.RequestID),
			slog.String("org_id", c.OrgID),
			slog.String("key_id", c.KeyID),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", o.status),
			slog.Int64("credits_charged", o.charged),
			slog.String("outcome", o.result),
		)
	})
}

// recordCharge notes the credits a request finally cost, after any refund.
func recordCharge(ctx context.Context, n int64) {
	if o, ok := ctx.Value(outcomeKey{}).(*outcome); ok {
		o.charged = n
	}
}

// setOutcome names what became of a charged request, for the access log.
func setOutcome(ctx context.Context, result string) {
	if o, ok := ctx.Value(outcomeKey{}).(*outcome); ok {
		o.result = result
	}
}
