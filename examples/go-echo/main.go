// Command go-echo is an example Lambda function built with aws-lambda-go: it echoes its event.
// {"fail": true} makes it return an error; {"sleep_ms": N} makes it sleep first.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

func handler(ctx context.Context, event json.RawMessage) (json.RawMessage, error) {
	log.Printf("echo %d bytes", len(event))
	var opts struct {
		Fail    bool `json:"fail"`
		SleepMS int  `json:"sleep_ms"`
	}
	_ = json.Unmarshal(event, &opts)
	if opts.SleepMS > 0 {
		time.Sleep(time.Duration(opts.SleepMS) * time.Millisecond)
	}
	if opts.Fail {
		return nil, errors.New("you asked me to fail")
	}
	return event, nil
}

func main() {
	lambda.Start(handler)
}
