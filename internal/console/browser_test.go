package console_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/chromedp/chromedp"
)

// TestBrowser drives the console in a real headless Chromium (Debian's chromium, installed by
// scripts/tools.sh): the functions list and a function page load, an invoke from the page's
// Invoke button moves the counters and its log line appears in the live tail, and with access
// keys the console sends an unsigned browser to sign in, refuses a wrong key, and works once
// signed in. It saves a screenshot of each page in $FLINT_SCREENSHOTS (or a directory it
// names in the log).
func TestBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found (%v): the console's browser test needs Debian's chromium; scripts/tools.sh (ensure_tools) installs it, or apt-get install chromium", err)
	}
	shots := os.Getenv("FLINT_SCREENSHOTS")
	if shots == "" {
		if shots, err = os.MkdirTemp("", "flint-console-screenshots-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)

	dev := devServer(t)
	keyed := keyedServer(t)
	createFunction(t, lambdaClient(dev, "AKIDFLINTTEST", "secret"), "browser-fn")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000),
		// Without these Chromium stalls on a closed network, reaching for Google's services.
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true), chromedp.Flag("metrics-recording-only", true))
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	started := time.Now()
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(browser, actions...); err != nil {
			shot(t, browser, shots, "failed-"+strings.ReplaceAll(name, " ", "-"))
			t.Fatalf("%s: %v", name, err)
		}
	}
	// until polls a JavaScript predicate for up to 30 s, across the page navigations a click or a
	// form may start (a poll running in the page that goes away fails: it is started again).
	until := func(what, js string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := chromedp.Run(browser, chromedp.Poll[bool](js, chromedp.WithPollingInterval(100*time.Millisecond),
				chromedp.WithPollingTimeout(time.Until(deadline))))
			if err == nil {
				return
			}
			if time.Now().Before(deadline) && (strings.Contains(err.Error(), "navigated or closed") ||
				strings.Contains(err.Error(), "Not attached to an active page") || strings.Contains(err.Error(), "Execution context was destroyed") ||
				strings.Contains(err.Error(), "Cannot find context")) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			shot(t, browser, shots, "failed-"+strings.ReplaceAll(what, " ", "-"))
			t.Fatalf("waiting for %s (%s): %v", what, js, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(browser, chromedp.Evaluate[string](`(document.querySelector(`+strconv.Quote(sel)+`)||{}).textContent||""`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Local development mode: the functions list, then the function page.
	row := `document.querySelector('tr[data-name="browser-fn"]')`
	step("open the console", chromedp.Navigate(dev.URL()+"/console/"))
	until("browser-fn listed with no invocations", row+`?.querySelector('td.invocations')?.textContent === '0'`)
	until("the development-mode banner", `document.getElementById('who').textContent.includes('local development mode')`)
	shot(t, browser, shots, "1-functions-list")

	step("open the function page", chromedp.Click(chromedp.CSS(`tr[data-name="browser-fn"] a`)))
	until("the function page with its live tail", `document.getElementById('log-state')?.textContent === 'live' && document.getElementById('stat-invocations')?.textContent === '0'`)
	until("the configuration", `document.getElementById('config').textContent.includes('app.handler')`)
	step("invoke from the page",
		chromedp.SetValue(chromedp.CSS("#invoke-payload"), `{"from": "browser"}`),
		chromedp.Click(chromedp.CSS("#invoke-button")))
	until("the invoke's result", `document.getElementById('invoke-outcome')?.textContent === 'Succeeded'`)
	requestID := text("#invoke-request-id")
	if out := text("#invoke-payload-out"); out != `{"echo": {"from": "browser"}}` {
		t.Errorf("the invoke's payload shows %q", out)
	}
	until("the counters to move", `document.getElementById('stat-invocations').textContent === '1' && document.getElementById('stat-cold').textContent === '1'`)
	until("the log line in the live tail", `document.getElementById('log-view').textContent.includes('console-marker {"from": "browser"}')`)
	until("the invocation's request ID among the recent invocations", `document.getElementById('recent').textContent.includes(`+strconv.Quote(requestID)+`)`)
	// The filter hides records without the text and shows them again when cleared.
	setFilter := func(v string) {
		t.Helper()
		step("filter "+v, chromedp.Evaluate[chromedp.Void](`(() => { const f = document.getElementById('log-filter'); f.value = `+strconv.Quote(v)+`; f.dispatchEvent(new Event('input')); })()`))
	}
	setFilter(`console-marker -"from"`)
	until("the filter's exclusion to hide every record", `document.querySelectorAll('#log-view .log-record').length === 0`)
	setFilter(`?no-such-text ?"{\"from\": \"browser\"}" REPORT`)
	until("the filter's alternatives and terms to show the record", `document.querySelectorAll('#log-view .log-record').length === 1`)
	shot(t, browser, shots, "2-function-page-after-invoke")

	step("back to the list", chromedp.Navigate(dev.URL()+"/console/#/"))
	until("the list's counter to move", row+`?.querySelector('td.invocations')?.textContent === '1' && `+row+`.querySelector('td.cold').textContent === '1'`)
	shot(t, browser, shots, "3-functions-list-after-invoke")
	sm := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String(dev.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFLINTTEST", "secret", ""), RetryMaxAttempts: 1})
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("browser/api-token"),
		Description: aws.String("shown by name only"), SecretString: aws.String("s3cr3t-browser-value")}); err != nil {
		t.Fatal(err)
	}
	step("open queues, mappings and secrets", chromedp.Navigate(dev.URL()+"/console/#/resources"))
	until("the resources page with the secret's name", `document.getElementById('secrets')?.textContent.includes('browser/api-token') && document.querySelector('#mappings tr') !== null`)
	if strings.Contains(text("body"), "s3cr3t-browser-value") {
		t.Error("the resources page shows a secret's value")
	}
	shot(t, browser, shots, "4-resources")

	// With access keys: an unsigned browser is sent to sign in; a wrong key is refused.
	createFunction(t, lambdaClient(keyed, key.AccessKeyID, key.SecretAccessKey), "keyed-fn")
	step("open the keyed console", chromedp.Navigate(keyed.URL()+"/console/"))
	until("the sign-in page", `location.pathname === '/console/signin' && document.getElementById('signin') !== null`)
	shot(t, browser, shots, "5-sign-in")
	step("open the keyed console's JSON unsigned", chromedp.Navigate(keyed.URL()+"/console/api/functions"))
	until("the JSON refused", `document.body.textContent.includes('sign in to the console first') && !document.body.textContent.includes('keyed-fn')`)
	step("back to sign in", chromedp.Navigate(keyed.URL()+"/console/signin"))
	step("sign in with a wrong secret",
		chromedp.SetValue(chromedp.CSS("#access_key_id"), key.AccessKeyID),
		chromedp.SetValue(chromedp.CSS("#secret_access_key"), "not-the-secret"),
		chromedp.Click(chromedp.CSS("#submit")))
	until("the refusal", `document.getElementById('error')?.textContent.includes('wrong secret')`)
	step("sign in",
		chromedp.SetValue(chromedp.CSS("#access_key_id"), key.AccessKeyID),
		chromedp.SetValue(chromedp.CSS("#secret_access_key"), key.SecretAccessKey),
		chromedp.Click(chromedp.CSS("#submit")))
	until("the signed-in console", `document.getElementById('who')?.textContent === 'signed in as `+key.AccessKeyID+`'`)
	until("keyed-fn listed", `document.querySelector('tr[data-name="keyed-fn"]') !== null`)
	step("open keyed-fn", chromedp.Click(chromedp.CSS(`tr[data-name="keyed-fn"] a`)))
	until("keyed-fn's page", `document.getElementById('log-state')?.textContent === 'live'`)
	step("invoke signed in", chromedp.Click(chromedp.CSS("#invoke-button")))
	until("the signed-in invoke's result (the CSRF token accepted)", `document.getElementById('invoke-outcome')?.textContent === 'Succeeded'`)
	until("the signed-in counters to move", `document.getElementById('stat-invocations').textContent === '1'`)
	until("the signed-in log tail", `document.getElementById('log-view').textContent.includes('console-marker {\n  "hello": "flint"\n}') || document.getElementById('log-view').textContent.includes('console-marker {"hello": "flint"}')`)
	shot(t, browser, shots, "6-signed-in-function-page")
	step("sign out", chromedp.Click(chromedp.CSS("#signout button")))
	until("the sign-in page after signing out", `location.pathname === '/console/signin'`)
	step("come back after signing out", chromedp.Navigate(keyed.URL()+"/console/"))
	until("the sign-in page again", `location.pathname === '/console/signin' && document.getElementById('signin') !== null`)
	t.Logf("browser steps took %v", time.Since(started).Round(time.Millisecond))
}

// shot saves the tab's full page as dir/name.png and logs the path.
func shot(t *testing.T, browser context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot %s (%d KB)", path, len(png)>>10)
}
