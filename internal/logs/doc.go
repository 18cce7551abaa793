// Package logs owns function output as data: the platform lines Lambda writes around every
// invocation (START, END, REPORT and the timeout line, byte for byte as AWS writes them), the
// X-Amz-Log-Result tail, and the durable log store on JetStream, by function and by log group
// (a function's own, /aws/lambda/NAME, or the custom one its LoggingConfig names: groups.go),
// that the CLI reads and follows over HTTP and CloudWatch Logs' view reads by group.
//
// The invoke path only formats into a caller's buffer (Append* functions, no fmt, no allocation)
// and hands a finished invocation's text to Store.Append, which copies it into a bounded queue and
// never blocks or touches the network; Store.Run, owned by the server, publishes the queue.
//
// This package must not do operator logging of function output (that is data, not slog), must not
// import other Flint packages (the API layer resolves and validates functions and renders AWS
// errors; sandboxes and workers produce the bytes), and must not start goroutines that nobody
// owns: Run and Follow return when their context ends.
package logs
