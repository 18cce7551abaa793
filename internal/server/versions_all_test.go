package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// TestListFunctionsAllVersions: FunctionVersion=ALL lists every function's $LATEST (its ARN
// qualified with $LATEST) and published versions, by name and version, in pages of any size, as
// AWS's recording (test_lambda_api.snapshot.json TestLambdaFunction::test_list_functions
// list_all) shows; without it, $LATEST only, unqualified.
func TestListFunctionsAllVersions(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	zip := mustZip(t, map[string]zipEntry{"index.py": {body: "def handler(event, context):\n    return event\n"}})
	createFunction(t, c, "list-fn-1", "python3.12", "index.handler", zip, func(in *lambda.CreateFunctionInput) { in.Publish = true })
	createFunction(t, c, "list-fn-2", "python3.12", "index.handler", zip)
	for i := 2; i <= 10; i++ { // versions 2..10 of list-fn-1: 10 sorts before 2 as text
		if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("list-fn-1"),
			Description: aws.String(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("list-fn-1")}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(all bool, size int32) []string {
		t.Helper()
		in := &lambda.ListFunctionsInput{MaxItems: aws.Int32(size)}
		if all {
			in.FunctionVersion = types.FunctionVersionAll
		}
		var got []string
		p := lambda.NewListFunctionsPaginator(c, in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range out.Functions {
				if !strings.HasSuffix(*f.FunctionArn, ":function:"+*f.FunctionName+map[bool]string{true: ":" + *f.Version, false: ""}[all]) {
					t.Errorf("%s version %s: ARN %s", *f.FunctionName, *f.Version, *f.FunctionArn)
				}
				got = append(got, *f.FunctionName+":"+*f.Version)
			}
		}
		return got
	}
	want := []string{"list-fn-1:$LATEST"}
	for i := 1; i <= 10; i++ {
		want = append(want, fmt.Sprintf("list-fn-1:%d", i))
	}
	want = append(want, "list-fn-2:$LATEST")
	for _, size := range []int32{1, 3, 50} {
		if got := list(true, size); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("ALL in pages of %d:\n got %v\nwant %v", size, got, want)
		}
	}
	if got := list(false, 1); strings.Join(got, " ") != "list-fn-1:$LATEST list-fn-2:$LATEST" {
		t.Errorf("default listing: %v", got)
	}
}

// TestPublishChangesLatestRevision: publishing a version gives $LATEST a new RevisionId (AWS's
// recording: TestLambdaRevisions::test_function_revisions_version_and_alias
// get_function_latest_rev3); a RevisionId from before the publish no longer updates it.
func TestPublishChangesLatestRevision(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	zip := mustZip(t, map[string]zipEntry{"index.py": {body: "def handler(event, context):\n    return event\n"}})
	created := createFunction(t, c, "rev", "python3.12", "index.handler", zip)
	v, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("rev"), RevisionId: created.RevisionId})
	if err != nil {
		t.Fatal(err)
	}
	latest, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("rev")})
	if err != nil {
		t.Fatal(err)
	}
	if *latest.RevisionId == *created.RevisionId || *latest.RevisionId == *v.RevisionId {
		t.Fatalf("$LATEST's RevisionId after publish %s (before %s, version's %s)", *latest.RevisionId, *created.RevisionId, *v.RevisionId)
	}
	_, err = c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("rev"),
		Description: aws.String("x"), RevisionId: created.RevisionId})
	wantAPIError(t, err, "PreconditionFailedException")
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("rev"),
		Description: aws.String("x"), RevisionId: latest.RevisionId}); err != nil {
		t.Fatalf("update with the new RevisionId: %v", err)
	}
	// Publishing nothing new answers the newest version and leaves $LATEST as it is.
	again, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("rev")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("rev")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("rev")}); err != nil {
		t.Fatal(err)
	}
	after, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("rev")})
	if err != nil {
		t.Fatal(err)
	}
	if *after.RevisionId == *again.RevisionId {
		t.Fatal("publishing version 2 left $LATEST's RevisionId")
	}
}

// TestReservedVersusProvisioned: a reservation below the function's total provisioned
// concurrency is refused, and so is provisioned concurrency that would take the total above
// the reservation (every version and alias counts); refusals change nothing.
func TestReservedVersusProvisioned(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	zip := mustZip(t, map[string]zipEntry{"index.py": {body: "def handler(event, context):\n    return event\n"}})
	createFunction(t, c, "pc", "python3.12", "index.handler", zip, func(in *lambda.CreateFunctionInput) { in.Publish = true })
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("pc"), Description: aws.String("2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("pc")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("pc"), Name: aws.String("live"), FunctionVersion: aws.String("2")}); err != nil {
		t.Fatal(err)
	}
	provision := func(q string, n int32) error {
		_, err := c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("pc"),
			Qualifier: aws.String(q), ProvisionedConcurrentExecutions: aws.Int32(n)})
		return err
	}
	reserve := func(n int32) error {
		_, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("pc"), ReservedConcurrentExecutions: aws.Int32(n)})
		return err
	}
	reserved := func() int32 {
		t.Helper()
		out, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String("pc")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToInt32(out.ReservedConcurrentExecutions)
	}
	if err := provision("1", 1); err != nil {
		t.Fatal(err)
	}
	if err := provision("live", 2); err != nil {
		t.Fatal(err)
	}
	if err := reserve(5); err != nil {
		t.Fatal(err)
	}
	// Reserved below the total provisioned (3).
	err := reserve(2)
	wantAPIError(t, err, "InvalidParameterValueException")
	if !strings.Contains(err.Error(), "ReservedConcurrentExecutions  2 should not be lower than function's total provisioned concurrency [3].") {
		t.Errorf("message: %v", err)
	}
	if got := reserved(); got != 5 {
		t.Fatalf("reserved after a refused put: %d, want 5", got)
	}
	if err := reserve(3); err != nil {
		t.Fatalf("reserve exactly the provisioned total: %v", err)
	}
	// Provisioned above the reservation, counting the other qualifiers (2 + 2 > 3).
	err = provision("1", 2)
	wantAPIError(t, err, "InvalidParameterValueException")
	if !strings.Contains(err.Error(), "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function") {
		t.Errorf("message: %v", err)
	}
	out, err := c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("pc"), Qualifier: aws.String("1")})
	if err != nil || aws.ToInt32(out.RequestedProvisionedConcurrentExecutions) != 1 {
		t.Fatalf("config after a refused put: %+v, %v", out, err)
	}
	// Replacing a qualifier's own setting counts it once.
	if err := provision("live", 2); err != nil {
		t.Fatalf("putting the same setting again: %v", err)
	}
}

// TestCreateFunctionEmptyTags: Tags={} on CreateFunction is a function without tags.
func TestCreateFunctionEmptyTags(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := newClient(s.URL())
	ctx := context.Background()
	zip := mustZip(t, map[string]zipEntry{"index.py": {body: "def handler(event, context):\n    return event\n"}})
	out := createFunction(t, c, "notags", "python3.12", "index.handler", zip, func(in *lambda.CreateFunctionInput) { in.Tags = map[string]string{} })
	tags, err := c.ListTags(ctx, &lambda.ListTagsInput{Resource: out.FunctionArn})
	if err != nil || tags.Tags == nil || len(tags.Tags) != 0 {
		t.Fatalf("ListTags: %+v, %v", tags, err)
	}
	fn, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("notags")})
	if err != nil {
		t.Fatal(err)
	}
	if fn.Tags != nil {
		t.Fatalf("GetFunction's Tags %v, want none", fn.Tags)
	}
}
