// Package events holds the shapes Flint translates to and from when something other than a
// direct Invoke triggers a function: function URL requests and responses (API Gateway payload
// format 2.0) and EventBridge Scheduler expressions (rate, cron, at, in time zones); event source
// mappings later. It does no I/O and knows nothing of the store or the worker.
package events
