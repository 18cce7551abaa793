// Package apigw holds the shapes of API Gateway's Lambda proxy integrations, with no I/O: the
// stored API (its routes, stage and stage variables), the route table that picks a route for a
// request as API Gateway does (exact paths before {param} paths before a greedy {name+}, a
// method before ANY, an HTTP API's $default last), the request events a function receives
// (REST API payload 1.0, HTTP API payload 2.0 and 1.0) and the parsing of the function's answer
// by each format's rules. The function URL payload (internal/functionurl) is format 2.0 and
// shares its helpers. control stores and validates APIs, invoke keeps their route tables in
// memory, api serves the requests.
package apigw
