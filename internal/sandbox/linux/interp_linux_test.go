package linux

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestInterpreterHome: an interpreter outside the host directories every root shows brings its
// installation, shown at /var/lang with argv[0] and the linker's path rewritten; one in /usr
// or a guest path changes nothing.
func TestInterpreterHome(t *testing.T) {
	for _, tt := range []struct {
		argv, env         []string
		home              string
		wantArgv, wantEnv []string
	}{
		{[]string{"/root/.pyenv/versions/3.12.1/bin/python3.12", "/var/runtime/python/bootstrap.py"},
			[]string{"A=1", "LD_LIBRARY_PATH=/lib64:/opt/lib"}, "/root/.pyenv/versions/3.12.1",
			[]string{"/var/lang/bin/python3.12", "/var/runtime/python/bootstrap.py"}, []string{"A=1", "LD_LIBRARY_PATH=/var/lang/lib:/lib64:/opt/lib"}},
		{[]string{"/srv/flint-data/runtimes/nodejs22.x/bin/node", "x"}, []string{"A=1"}, "/srv/flint-data/runtimes/nodejs22.x",
			[]string{"/var/lang/bin/node", "x"}, []string{"A=1", "LD_LIBRARY_PATH=/var/lang/lib"}},
		{[]string{"/tmp/d/runtimes/nodejs22.x/bin/node"}, []string{"LD_LIBRARY_PATH=/var/lang/lib:/x"}, "/tmp/d/runtimes/nodejs22.x",
			[]string{"/var/lang/bin/node"}, []string{"LD_LIBRARY_PATH=/var/lang/lib:/x"}},
		{[]string{"/usr/bin/python3.11", "x"}, []string{"A=1"}, "", []string{"/usr/bin/python3.11", "x"}, []string{"A=1"}},
		{[]string{"/usr/local/bin/python3.12"}, nil, "", []string{"/usr/local/bin/python3.12"}, nil},
		{[]string{"/var/task/bootstrap"}, nil, "", []string{"/var/task/bootstrap"}, nil},
		{[]string{"/opt/bootstrap"}, nil, "", []string{"/opt/bootstrap"}, nil},
		{[]string{"/srv/tool"}, nil, "", []string{"/srv/tool"}, nil}, // not in a bin/ of its own
		{[]string{"/bin/node"}, nil, "", []string{"/bin/node"}, nil},
		{[]string{"bootstrap"}, nil, "", []string{"bootstrap"}, nil},
	} {
		home := interpreterHome(tt.argv)
		argv, env := inGuestLang(home, tt.argv, tt.env)
		if home != tt.home || !cmp.Equal(argv, tt.wantArgv) || !cmp.Equal(env, tt.wantEnv) {
			t.Errorf("%q, %q: home %q argv %q env %q; want %q %q %q", tt.argv, tt.env, home, argv, env, tt.home, tt.wantArgv, tt.wantEnv)
		}
		// A prestarted runtime's binding gets the same variables, without an argv.
		if env := guestLangEnv(home, tt.env); !cmp.Equal(env, tt.wantEnv) {
			t.Errorf("%q: guestLangEnv %q, want %q", tt.env, env, tt.wantEnv)
		}
	}
}
