package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	stypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
)

func newSchedulerClient(url string) *scheduler.Client {
	return scheduler.New(scheduler.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFLINTTEST", "secret", ""), RetryMaxAttempts: 1})
}

// firings reads the request ids a recorder function appended to its file.
func firings(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func TestScheduleAtFiresOnce(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	c := newClient(s.URL())
	sc := newSchedulerClient(s.URL())
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "fired")
	createFunction(t, c, "tick", "python3.12", "app.handler", mustZip(t, map[string]zipEntry{"app.py": {body: "import os\ndef handler(e, c):\n    open(os.environ['OUT'], 'a').write(e['msg'] + ':' + c.aws_request_id + '\\n')\n"}}),
		func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"OUT": out}}
		})

	at := time.Now().UTC().Add(2 * time.Second).Format("2006-01-02T15:04:05")
	created, err := sc.CreateSchedule(ctx, &scheduler.CreateScheduleInput{Name: aws.String("once"), ScheduleExpression: aws.String("at(" + at + ")"),
		FlexibleTimeWindow: &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeOff},
		Target:             &stypes.Target{Arn: aws.String("arn:aws:lambda:us-east-1:000000000000:function:tick"), RoleArn: aws.String(role), Input: aws.String(`{"msg":"hello"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(aws.ToString(created.ScheduleArn), ":schedule/default/once") {
		t.Errorf("ScheduleArn = %s", aws.ToString(created.ScheduleArn))
	}
	got, err := sc.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("once")})
	if err != nil || aws.ToString(got.ScheduleExpression) != "at("+at+")" || got.State != stypes.ScheduleStateEnabled {
		t.Errorf("GetSchedule = %+v, %v", got, err)
	}
	var fired []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && len(fired) == 0; time.Sleep(50 * time.Millisecond) {
		fired = firings(t, out)
	}
	if len(fired) != 1 || !strings.HasPrefix(fired[0], "hello:") {
		t.Fatalf("at() schedule fired %v", fired)
	}
	// Restarting does not fire it again.
	s.Close()
	s2 := startServer(t, dir)
	time.Sleep(1500 * time.Millisecond) // give a wrong second firing the chance to happen
	if again := firings(t, out); len(again) != 1 {
		t.Errorf("after a restart the at() schedule has fired %d times: %v", len(again), again)
	}
	sc2 := newSchedulerClient(s2.URL())
	list, err := sc2.ListSchedules(ctx, &scheduler.ListSchedulesInput{})
	if err != nil || len(list.Schedules) != 1 {
		t.Errorf("ListSchedules = %+v, %v", list, err)
	}
	for _, bad := range []string{"cron(0 0 * * * *)", "rate(0 minutes)", "rate(1 minutes)", "at(2026-13-01T00:00:00)", "every day"} {
		_, err := sc2.CreateSchedule(ctx, &scheduler.CreateScheduleInput{Name: aws.String("bad"), ScheduleExpression: aws.String(bad),
			FlexibleTimeWindow: &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeOff},
			Target:             &stypes.Target{Arn: aws.String("arn:aws:lambda:us-east-1:000000000000:function:tick"), RoleArn: aws.String(role)}})
		if apiErrorCode(err) != "ValidationException" {
			t.Errorf("expression %q: %v, want ValidationException", bad, err)
		}
	}
	if _, err := sc2.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String("once")}); err != nil {
		t.Fatal(err)
	}
	if _, err := sc2.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("once")}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("GetSchedule after delete: %v", err)
	}
}
