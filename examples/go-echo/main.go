// Command go-echo is an example Lambda function built with aws-lambda-go: it returns its event
// unchanged. An event {"fail": true} makes it fail; {"sleep_ms": N} makes it sleep N ms first.
//
//	CGO_ENABLED=0 GOOS=linux go build -tags lambda.norpc -o bootstrap ./examples/go-echo
package main

import (
	"encoding/json"
	"errors"
	"log"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// control is what the handler looks for in an event; any other event is simply echoed.
type control struct {
	Fail    bool `json:"fail"`
	SleepMS int  `json:"sleep_ms"`
}

func handle(event json.RawMessage) (json.RawMessage, error) {
	log.Printf("echo %d bytes", len(event))
	var c control
	_ = json.Unmarshal(event, &c) // an event that is not an object has no controls
	if c.Fail {
		return nil, errors.New("you asked me to fail")
	}
	if c.SleepMS > 0 {
		// A plain sleep, not bounded by the context: past its timeout the function is stopped by
		// the platform, as on Lambda.
		time.Sleep(time.Duration(c.SleepMS) * time.Millisecond)
	}
	return event, nil
}

func main() {
	lambda.Start(handle)
}
