package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is Flint's release, set at link time (scripts/run.sh sets it from git describe):
//
//	go build -ldflags "-X github.com/flint-run/flint/internal/cli.version=v0.1.0" ./cmd/flint
var version = ""

// versionInfo is what `flint version` says, as --json prints it.
type versionInfo struct {
	// Version is the link-time version, else the main module's (a tag, or Go's pseudo-version
	// from the commit), else "devel".
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"` // the commit built
	Time     string `json:"time,omitempty"`     // the commit's time
	Modified bool   `json:"modified"`           // the tree had uncommitted changes
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

func (a *app) versionCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print flint's version",
		Args:  rangeArgs(0, 0, ""),
		RunE: func(*cobra.Command, []string) error {
			info, _ := debug.ReadBuildInfo()
			v := describeBuild(info, version)
			if asJSON {
				return writeJSON(a.stdout, v)
			}
			_, err := fmt.Fprintln(a.stdout, v.String())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the version, commit, Go version and platform as JSON")
	return cmd
}

// describeBuild reads the version from the link-time version and the build information Go
// records in the binary (info may be nil).
func describeBuild(info *debug.BuildInfo, linkVersion string) versionInfo {
	v := versionInfo{Version: linkVersion, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info != nil {
		v.Go = info.GoVersion
		if m := info.Main.Version; v.Version == "" && m != "" && m != "(devel)" {
			v.Version = m
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			case "GOOS":
				v.Platform = s.Value + v.Platform[strings.IndexByte(v.Platform, '/'):]
			case "GOARCH":
				v.Platform = v.Platform[:strings.IndexByte(v.Platform, '/')+1] + s.Value
			}
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	return v
}

// String is the line `flint version` prints: flint v1.2.0 (commit 0123456789ab, 2026-12-06T13:50:52Z,
// modified; go1.26.8 linux/amd64).
func (v versionInfo) String() string {
	var parts []string
	switch {
	case v.Revision != "":
		rev := v.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		parts = append(parts, "commit "+rev)
		if v.Time != "" {
			parts = append(parts, v.Time)
		}
		if v.Modified {
			parts = append(parts, "modified")
		}
	case v.Version == "devel":
		parts = append(parts, "no version recorded: build with scripts/run.sh, or go build -buildvcs=true in a git clone")
	}
	detail := v.Go + " " + v.Platform
	if len(parts) > 0 {
		detail = strings.Join(parts, ", ") + "; " + detail
	}
	return "flint " + v.Version + " (" + detail + ")"
}
