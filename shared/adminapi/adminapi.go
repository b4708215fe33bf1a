// Package adminapi is the admin API for a dashboard backend: package admin's
// operations over HTTP. It runs behind API Gateway routes protected by IAM
// authorization (SigV4), never by an API key; see template.yaml.
package adminapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/contactlevel/metering/shared/admin"
)

// maxBody bounds a request body; admin requests are small.
const maxBody = 64 << 10

type server struct {
	admin *admin.Service
	log   *slog.Logger
}

// New returns the admin API over svc. Every route is listed here.
func New(svc *admin.Service, log *slog.Logger) http.Handler {
	s := &server{admin: svc, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/orgs", s.createOrg)
	mux.HandleFunc("GET /admin/orgs", s.listOrgs)
	mux.HandleFunc("GET /admin/orgs/{org}", s.showOrg)
	mux.HandleFunc("POST /admin/orgs/{org}/keys", s.issueKey)
	mux.HandleFunc("GET /admin/orgs/{org}/keys", s.listKeys)
	mux.HandleFunc("POST /admin/orgs/{org}/keys/{key}/revoke", s.revokeKey)
	mux.HandleFunc("POST /admin/orgs/{org}/keys/{key}/rotate", s.rotateKey)
	mux.HandleFunc("POST /admin/orgs/{org}/credits/grants", s.grant)
	mux.HandleFunc("POST /admin/orgs/{org}/credits/adjustments", s.adjust)
	mux.HandleFunc("GET /admin/orgs/{org}/ledger", s.ledger)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		write(w, http.StatusNotFound, detail("Not Found"))
	})
	return s.audit(mux)
}

// audit logs every admin request with the IAM principal that API Gateway
// authenticated, so that each change can be traced to a caller. Bodies are
// never logged: responses may carry a raw key.
func (s *server) audit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		principal, requestID := "", ""
		if rc, ok := core.GetAPIGatewayContextFromContext(r.Context()); ok {
			principal, requestID = rc.Identity.UserArn, rc.RequestID
		}
		s.log.InfoContext(r.Context(), "admin request", "request_id", requestID, "principal", principal,
			"method", r.Method, "path", r.URL.Path, "status", rec.status)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// CreateOrgRequest is the body of POST /admin/orgs.
type CreateOrgRequest struct {
	ID      string `json:"organization_id"`
	Name    string `json:"name"`
	Plan    string `json:"plan"`
	KeyName string `json:"key_name"`
}

// IssueKeyRequest is the body of POST /admin/orgs/{org}/keys: an expiry as
// a time, or as a duration such as "720h", or neither.
type IssueKeyRequest struct {
	Name      string     `json:"name"`
	ExpiresAt *time.Time `json:"expires_at"`
	ExpiresIn string     `json:"expires_in"`
}

// RotateKeyRequest is the body of POST /admin/orgs/{org}/keys/{key}/rotate.
type RotateKeyRequest struct {
	// GraceSeconds is how long the old key keeps working, 0 to 86400.
	GraceSeconds int64 `json:"grace_seconds"`
}

// GrantRequest is the body of POST /admin/orgs/{org}/credits/grants.
type GrantRequest struct {
	Bucket    string     `json:"bucket"`
	Amount    int64      `json:"amount"`
	Reference string     `json:"reference"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// AdjustRequest is the body of POST /admin/orgs/{org}/credits/adjustments.
type AdjustRequest struct {
	Bucket string `json:"bucket"`
	Amount int64  `json:"amount"`
	Reason string `json:"reason"`
}

func (s *server) createOrg(w http.ResponseWriter, r *http.Request) {
	var in CreateOrgRequest
	if !decode(w, r, &in) {
		return
	}
	out, err := s.admin.CreateOrg(r.Context(), admin.NewOrg{ID: in.ID, Name: in.Name, Plan: in.Plan, KeyName: in.KeyName})
	s.reply(w, r, http.StatusCreated, out, err)
}

func (s *server) listOrgs(w http.ResponseWriter, r *http.Request) {
	orgs, err := s.admin.ListOrgs(r.Context())
	s.reply(w, r, http.StatusOK, map[string]any{"organizations": orgs}, err)
}

func (s *server) showOrg(w http.ResponseWriter, r *http.Request) {
	out, err := s.admin.ShowOrg(r.Context(), r.PathValue("org"))
	s.reply(w, r, http.StatusOK, out, err)
}

func (s *server) issueKey(w http.ResponseWriter, r *http.Request) {
	var in IssueKeyRequest
	if !decode(w, r, &in) {
		return
	}
	nk := admin.NewKey{Name: in.Name}
	if in.ExpiresAt != nil {
		nk.Expires = *in.ExpiresAt
	}
	if in.ExpiresIn != "" {
		d, err := time.ParseDuration(in.ExpiresIn)
		if err != nil {
			write(w, http.StatusUnprocessableEntity, detail(fmt.Sprintf("expires_in: %v", err)))
			return
		}
		nk.TTL = d
	}
	out, err := s.admin.IssueKey(r.Context(), r.PathValue("org"), nk)
	s.reply(w, r, http.StatusCreated, out, err)
}

func (s *server) listKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.admin.ListKeys(r.Context(), r.PathValue("org"))
	s.reply(w, r, http.StatusOK, map[string]any{"keys": keys}, err)
}

func (s *server) revokeKey(w http.ResponseWriter, r *http.Request) {
	out, err := s.admin.RevokeKey(r.Context(), r.PathValue("org"), r.PathValue("key"))
	s.reply(w, r, http.StatusOK, out, err)
}

func (s *server) rotateKey(w http.ResponseWriter, r *http.Request) {
	var in RotateKeyRequest
	if !decode(w, r, &in) {
		return
	}
	if in.GraceSeconds < 0 || in.GraceSeconds > int64(admin.MaxGrace/time.Second) {
		write(w, http.StatusUnprocessableEntity, detail("grace_seconds must be between 0 and 86400"))
		return
	}
	out, err := s.admin.RotateKey(r.Context(), r.PathValue("org"), r.PathValue("key"), time.Duration(in.GraceSeconds)*time.Second)
	s.reply(w, r, http.StatusCreated, out, err)
}

func (s *server) grant(w http.ResponseWriter, r *http.Request) {
	var in GrantRequest
	if !decode(w, r, &in) {
		return
	}
	g := admin.Grant{Bucket: in.Bucket, Amount: in.Amount, Reference: in.Reference}
	if in.ExpiresAt != nil {
		g.Expires = *in.ExpiresAt
	}
	out, err := s.admin.GrantCredits(r.Context(), r.PathValue("org"), g)
	status := http.StatusCreated
	if out.Duplicate {
		status = http.StatusOK // nothing new was created
	}
	s.reply(w, r, status, out, err)
}

func (s *server) adjust(w http.ResponseWriter, r *http.Request) {
	var in AdjustRequest
	if !decode(w, r, &in) {
		return
	}
	out, err := s.admin.AdjustCredits(r.Context(), r.PathValue("org"), admin.Adjustment{Bucket: in.Bucket, Amount: in.Amount, Reason: in.Reason})
	s.reply(w, r, http.StatusCreated, out, err)
}

func (s *server) ledger(w http.ResponseWriter, r *http.Request) {
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			write(w, http.StatusUnprocessableEntity, detail("limit must be an integer"))
			return
		}
		limit = n
	}
	out, err := s.admin.Ledger(r.Context(), r.PathValue("org"), limit, r.URL.Query().Get("cursor"))
	s.reply(w, r, http.StatusOK, out, err)
}

// reply writes v with status, or the error's status and text. Unexpected
// errors are logged and answered without detail.
func (s *server) reply(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	switch {
	case err == nil:
		write(w, status, v)
	case errors.Is(err, admin.ErrInvalid):
		write(w, http.StatusUnprocessableEntity, detail(err.Error()))
	case errors.Is(err, admin.ErrNotFound):
		write(w, http.StatusNotFound, detail(err.Error()))
	case errors.Is(err, admin.ErrConflict):
		write(w, http.StatusConflict, detail(err.Error()))
	default:
		s.log.ErrorContext(r.Context(), "admin request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		write(w, http.StatusInternalServerError, detail("Internal Server Error"))
	}
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	// An empty body is an empty request: rotate and the like have defaults.
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		write(w, http.StatusBadRequest, detail(fmt.Sprintf("invalid JSON body: %v", err)))
		return false
	}
	return true
}

func detail(msg string) map[string]string { return map[string]string{"detail": msg} }

func write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	// Responses may carry a raw key, shown once: no cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
