package server

import "time"

// SetLogClock sets the clock the CloudWatch Logs API measures retention by (nil: time.Now).
func SetLogClock(s *Server, now func() time.Time) { s.cwlogs.SetClock(now) }
