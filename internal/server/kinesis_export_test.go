package server

import "time"

// SetKinesisClock replaces the clock s's Kinesis API expires shard iterators by (nil: time.Now).
func SetKinesisClock(s *Server, now func() time.Time) { s.kinesis.SetClock(now) }
