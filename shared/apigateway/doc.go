// Package apigateway emulates an AWS API Gateway REST API stage with Lambda
// proxy integrations and a Lambda REQUEST authorizer, so that the handlers
// that deploy run unchanged behind `make run` and in HTTP tests.
//
// It reproduces what the deployed API does to a request before and after a
// function sees it: resource matching (and the 403 "Missing Authentication
// Token" for anything unmatched), the authorizer's identity check, result
// cache and policy evaluation, the REST v1 event and response formats,
// Lambda's payload and timeout limits, and gateway responses with the
// template's customisations. Where AWS behaviour is undocumented the choice
// is explained next to the code.
package apigateway
