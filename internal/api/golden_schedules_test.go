package api_test

import "testing"

// TestGoldenSchedules: the EventBridge Scheduler API (CreateSchedule, GetSchedule,
// UpdateSchedule, DeleteSchedule, ListSchedules) and its rejections. The schedules fire in 2099
// or are disabled: nothing runs while the test does.
func TestGoldenSchedules(t *testing.T) {
	const (
		target = `"Target":{"Arn":"arn:aws:lambda:us-east-1:000000000000:function:golden-sched","RoleArn":"arn:aws:iam::123456789012:role/golden"}`
		window = `"FlexibleTimeWindow":{"Mode":"OFF"}`
		at     = `"ScheduleExpression":"at(2099-01-01T00:00:00)"`
	)
	runGolden(t, []step{
		{"create", "POST", "/schedules/golden-sched", `{` + at + `,` + window + `,` + target + `,"Description":"first"}`},
		{"create-taken", "POST", "/schedules/golden-sched", `{` + at + `,` + window + `,` + target + `}`},
		{"create-bad-name", "POST", "/schedules/golden!sched", `{` + at + `,` + window + `,` + target + `}`},
		{"create-bad-json", "POST", "/schedules/golden-sched-x", `{"ScheduleExpression":`},
		{"create-no-expression", "POST", "/schedules/golden-sched-x", `{` + window + `,` + target + `}`},
		{"create-bad-expression", "POST", "/schedules/golden-sched-x", `{"ScheduleExpression":"rate(0 minutes)",` + window + `,` + target + `}`},
		{"create-bad-cron", "POST", "/schedules/golden-sched-x", `{"ScheduleExpression":"cron(99 * * * ? *)",` + window + `,` + target + `}`},
		{"create-bad-timezone", "POST", "/schedules/golden-sched-x", `{` + at + `,"ScheduleExpressionTimezone":"Mars/Base",` + window + `,` + target + `}`},
		{"create-no-window", "POST", "/schedules/golden-sched-x", `{` + at + `,` + target + `}`},
		{"create-bad-mode", "POST", "/schedules/golden-sched-x", `{` + at + `,"FlexibleTimeWindow":{"Mode":"SOMETIMES"},` + target + `}`},
		{"create-flexible-no-max", "POST", "/schedules/golden-sched-x", `{` + at + `,"FlexibleTimeWindow":{"Mode":"FLEXIBLE"},` + target + `}`},
		{"create-flexible-too-long", "POST", "/schedules/golden-sched-x", `{` + at + `,"FlexibleTimeWindow":{"Mode":"FLEXIBLE","MaximumWindowInMinutes":1441},` + target + `}`},
		{"create-no-target", "POST", "/schedules/golden-sched-x", `{` + at + `,` + window + `}`},
		{"create-no-role", "POST", "/schedules/golden-sched-x", `{` + at + `,` + window + `,"Target":{"Arn":"arn:aws:lambda:us-east-1:000000000000:function:golden-sched"}}`},
		{"create-bad-target", "POST", "/schedules/golden-sched-x", `{` + at + `,` + window + `,"Target":{"Arn":"arn:aws:sqs:us-east-1:123456789012:q","RoleArn":"arn:aws:iam::123456789012:role/golden"}}`},
		{"create-foreign-target", "POST", "/schedules/golden-sched-x", `{` + at + `,` + window + `,"Target":{"Arn":"arn:aws:lambda:us-east-1:999999999999:function:golden-sched","RoleArn":"arn:aws:iam::123456789012:role/golden"}}`},
		{"create-bad-state", "POST", "/schedules/golden-sched-x", `{` + at + `,` + window + `,` + target + `,"State":"PAUSED"}`},
		{"create-bad-action", "POST", "/schedules/golden-sched-x", `{` + at + `,` + window + `,` + target + `,"ActionAfterCompletion":"KEEP"}`},
		{"create-other-group", "POST", "/schedules/golden-sched-x", `{` + at + `,` + window + `,` + target + `,"GroupName":"other"}`},
		{"create-other-group-query", "POST", "/schedules/golden-sched-x?groupName=other", `{` + at + `,` + window + `,` + target + `}`},
		{"create-second", "POST", "/schedules/golden-sched-2", `{"ScheduleExpression":"rate(5 minutes)","FlexibleTimeWindow":{"Mode":"FLEXIBLE","MaximumWindowInMinutes":10},` +
			target + `,"State":"DISABLED","GroupName":"default","StartDate":4070908800,"EndDate":4102444800,"ActionAfterCompletion":"NONE","ScheduleExpressionTimezone":"Europe/Paris"}`},
		{"get", "GET", "/schedules/golden-sched", ""},
		{"get-second", "GET", "/schedules/golden-sched-2?groupName=default", ""},
		{"get-missing", "GET", "/schedules/golden-sched-x", ""},
		{"get-other-group", "GET", "/schedules/golden-sched?groupName=other", ""},
		{"update-missing", "PUT", "/schedules/golden-sched-x", `{` + at + `,` + window + `,` + target + `}`},
		{"update-invalid", "PUT", "/schedules/golden-sched", `{"ScheduleExpression":"rate(1 fortnight)",` + window + `,` + target + `}`},
		{"update-bad-json", "PUT", "/schedules/golden-sched", `[`},
		{"update-other-group", "PUT", "/schedules/golden-sched?groupName=other", `{` + at + `,` + window + `,` + target + `}`},
		{"update", "PUT", "/schedules/golden-sched", `{"ScheduleExpression":"cron(0 12 1 1 ? 2099)",` + window + `,` + target + `,"State":"DISABLED","Description":"second"}`},
		{"get-updated", "GET", "/schedules/golden-sched", ""},
		{"list", "GET", "/schedules?NamePrefix=golden-sched", ""},
		{"list-page-1", "GET", "/schedules?NamePrefix=golden-sched&MaxResults=1", ""},
		{"list-page-2", "GET", "/schedules?NamePrefix=golden-sched&MaxResults=1&NextToken=golden-sched", ""},
		{"list-page-3", "GET", "/schedules?NamePrefix=golden-sched&MaxResults=1&NextToken=golden-sched-2", ""},
		{"list-enabled", "GET", "/schedules?NamePrefix=golden-sched&State=ENABLED", ""},
		{"list-disabled", "GET", "/schedules?NamePrefix=golden-sched&State=DISABLED", ""},
		{"list-other-group", "GET", "/schedules?NamePrefix=golden-sched&GroupName=other", ""},
		{"list-bad-max", "GET", "/schedules?MaxResults=101", ""},
		{"delete", "DELETE", "/schedules/golden-sched", ""},
		{"delete-again", "DELETE", "/schedules/golden-sched", ""},
		{"delete-other-group", "DELETE", "/schedules/golden-sched-2?groupName=other", ""},
		{"list-after-delete", "GET", "/schedules?NamePrefix=golden-sched", ""},
		{"delete-second", "DELETE", "/schedules/golden-sched-2", ""},
		{"list-empty", "GET", "/schedules?NamePrefix=golden-sched", ""},
	})
}
