// Package functionurl holds the shapes of a function URL call: the request event a function
// receives and the response it returns (API Gateway payload format 2.0, whose helpers and
// response rules it shares with HTTP APIs in internal/apigw). It does no I/O: api serves the
// URLs and invoke runs the function.
package functionurl
