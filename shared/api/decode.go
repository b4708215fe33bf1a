package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"reflect"
	"strconv"
	"strings"
)

// Field limits; the README documents them with the endpoints.
const (
	maxStringLen = 1000
	maxListLen   = 100
)

// decodeBody reads a JSON object into dst, answering 413 or 422 itself and
// returning false when the body is unusable.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) bool {
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		writeDetail(w, http.StatusBadRequest, "Could not read the request body")
		return false
	}
	if len(data) > MaxBodyBytes {
		writeDetail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body is larger than %d bytes", MaxBodyBytes))
		return false
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		writeInvalid(w, []FieldError{{Type: "missing", Loc: []any{"body"}, Msg: "Field required"}})
		return false
	}
	err = json.Unmarshal(data, dst)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return true
	case errors.As(err, &syntax):
		writeInvalid(w, []FieldError{{Type: "json_invalid", Loc: []any{"body", syntax.Offset}, Msg: "JSON decode error"}})
	case errors.As(err, &typ):
		writeInvalid(w, []FieldError{typeError(typ)})
	default:
		writeInvalid(w, []FieldError{{Type: "json_invalid", Loc: []any{"body"}, Msg: "JSON decode error"}})
	}
	return false
}

func typeError(e *json.UnmarshalTypeError) FieldError {
	loc := []any{"body"}
	if e.Field == "" {
		return FieldError{Type: "model_attributes_type", Loc: loc, Msg: "Input should be a valid dictionary or object to extract fields from"}
	}
	for _, part := range strings.Split(e.Field, ".") {
		if i, err := strconv.Atoi(part); err == nil {
			loc = append(loc, i)
		} else {
			loc = append(loc, part)
		}
	}
	t := e.Type
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return FieldError{Type: "string_type", Loc: loc, Msg: "Input should be a valid string"}
	case reflect.Bool:
		return FieldError{Type: "bool_type", Loc: loc, Msg: "Input should be a valid boolean"}
	case reflect.Int, reflect.Int64:
		return FieldError{Type: "int_type", Loc: loc, Msg: "Input should be a valid integer"}
	case reflect.Slice:
		return FieldError{Type: "list_type", Loc: loc, Msg: "Input should be a valid list"}
	}
	return FieldError{Type: "type_error", Loc: loc, Msg: "Input has the wrong type"}
}

// checkLimits bounds every string and list field of the struct v points to,
// by its JSON name, so that no field can carry an unbounded value into storage.
func checkLimits(v any) []FieldError {
	var errs []FieldError
	rv := reflect.ValueOf(v).Elem()
	for i := range rv.NumField() {
		name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		f := rv.Field(i)
		if f.Kind() == reflect.Pointer && !f.IsNil() {
			f = f.Elem()
		}
		switch f.Kind() {
		case reflect.String:
			if f.Len() > maxStringLen {
				errs = append(errs, tooLong([]any{"body", name}))
			}
		case reflect.Slice:
			if f.Len() > maxListLen {
				errs = append(errs, FieldError{Type: "too_long", Loc: []any{"body", name}, Msg: fmt.Sprintf("List should have at most %d items", maxListLen)})
			}
			for j := range f.Len() {
				if f.Index(j).Kind() == reflect.String && f.Index(j).Len() > maxStringLen {
					errs = append(errs, tooLong([]any{"body", name, j}))
				}
			}
		}
	}
	return errs
}

func tooLong(loc []any) FieldError {
	return FieldError{Type: "string_too_long", Loc: loc, Msg: fmt.Sprintf("String should have at most %d characters", maxStringLen)}
}

func required(name, value string) []FieldError {
	if value == "" {
		return []FieldError{{Type: "missing", Loc: []any{"body", name}, Msg: "Field required"}}
	}
	return nil
}

func checkEmails(name string, list []string) []FieldError {
	var errs []FieldError
	for i, s := range list {
		if a, err := mail.ParseAddress(s); err != nil || a.Address != s {
			errs = append(errs, FieldError{Type: "value_error", Loc: []any{"body", name, i}, Msg: "value is not a valid email address"})
		}
	}
	return errs
}

// requiredCredits reads ?required_credits=N: 1 when absent, else an integer
// from 1 to MaxRequiredCredits.
func requiredCredits(r *http.Request) (int64, []FieldError) {
	vals, ok := r.URL.Query()["required_credits"]
	if !ok || len(vals) == 0 {
		return 1, nil
	}
	loc := []any{"query", "required_credits"}
	n, err := strconv.ParseInt(vals[0], 10, 64)
	switch {
	case err != nil:
		return 0, []FieldError{{Type: "int_parsing", Loc: loc, Msg: "Input should be a valid integer, unable to parse string as an integer"}}
	case n < 1:
		return 0, []FieldError{{Type: "greater_than_equal", Loc: loc, Msg: "Input should be greater than or equal to 1"}}
	case n > MaxRequiredCredits:
		return 0, []FieldError{{Type: "less_than_equal", Loc: loc, Msg: fmt.Sprintf("Input should be less than or equal to %d", MaxRequiredCredits)}}
	}
	return n, nil
}
