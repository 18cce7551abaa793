package linux

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The host's runtime files visible in every environment, read-only.
var (
	hostDirs = []string{"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"}
	// /etc entries a runtime needs: users, name resolution, time zone, TLS roots, the dynamic
	// linker's cache, Debian's alternatives. Nothing else of the host's /etc is visible.
	hostEtc = []string{
		"passwd", "group", "resolv.conf", "nsswitch.conf", "host.conf", "gai.conf",
		"localtime", "timezone", "services", "protocols", "mime.types", "os-release",
		"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives",
		"ssl", "ca-certificates", "ca-certificates.conf", "pki", "crypto-policies",
	}
	hostDevs = []string{"null", "zero", "full", "random", "urandom", "tty"}
	// /proc entries that would let uid 0 reach the host kernel (sysctls, sysrq, irq affinity):
	// read-only, as in Docker's default.
	procReadOnly = []string{"sys", "sysrq-trigger", "irq", "bus", "fs", "acpi", "asound", "scsi", "driver"}
	// /proc files hidden behind an empty read-only file.
	procMasked = []string{"kcore", "keys", "timer_list", "sched_debug", "latency_stats", "kpagecount", "kpageflags", "kpagecgroup"}
)

const (
	roFlags  = unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV
	devFlags = unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NOEXEC
)

// The environment's root is assembled under the root directory the backend names, in the init's
// own (private) mount namespace: prepareRoot builds the part that is the same for every function
// (a spare init does it before it knows its function, off the cold start's path), finishRoot
// mounts the function's directories and pivots into it. On return / is the read-only sandbox root
// and the host's tree is gone from this namespace.
//
// Nothing of the host's layout may show through /proc/self/mountinfo, whose fourth field is a
// bind mount's path inside its source file system: host directories and /etc entries are bound
// only where that path is the one the environment sees (/usr at /usr); an /etc file that is a
// link elsewhere (/etc/resolv.conf -> /run/...) is copied instead, and the function's code, layers
// and runtime client (in the server's data directory) are mounted through a read-only overlay
// whose layers are named by descriptor (see hiddenRO).

// prepareRoot builds the part of the root at r that is the same for every function: the host's
// read-only directories, /etc entries, /dev and /proc.
func prepareRoot(r string, shmMB int) error {
	// Nothing below may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	if err := unix.Mount("tmpfs", r, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,nr_inodes=4096,mode=755"); err != nil {
		return fmt.Errorf("root tmpfs: %w", err)
	}
	for _, d := range hostDirs {
		host := "/" + d
		fi, err := os.Lstat(host)
		if err != nil {
			continue
		}
		if fi.Mode()&os.ModeSymlink != 0 { // merged /usr: /bin -> usr/bin, kept as a link
			target, err := os.Readlink(host)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, filepath.Join(r, d)); err != nil {
				return err
			}
			continue
		}
		if fi.IsDir() {
			if err := bindRO(host, filepath.Join(r, d), true, roFlags); err != nil {
				return err
			}
		}
	}
	for _, d := range []string{"etc", "var", "var/task", "var/runtime", "opt", "tmp", "dev", "proc"} {
		if err := os.Mkdir(filepath.Join(r, d), 0o755); err != nil {
			return err
		}
	}
	for _, e := range hostEtc {
		host, guest := "/etc/"+e, filepath.Join(r, "etc", e)
		if e == "resolv.conf" {
			host = resolvConf(host, systemdResolvConf)
		}
		fi, err := os.Stat(host) // follows links: /etc/resolv.conf -> /run/...
		if err != nil || !(fi.IsDir() || fi.Mode().IsRegular()) {
			continue
		}
		real, err := filepath.EvalSymlinks(host)
		switch {
		case err != nil:
			continue
		case real == "/etc/"+e:
			err = bindRO(real, guest, fi.IsDir(), roFlags)
		case underHostDirs(real):
			// Kept a link where the root shows its target at the same path: /etc/localtime ->
			// /usr/share/zoneinfo/Etc/UTC names the zone, and ICU (Node's Intl) without TZ looks
			// for a copied file's zone by reading every file under /usr/share/zoneinfo.
			err = os.Symlink(real, guest)
		case fi.IsDir():
			err = hiddenRO(real, guest)
		default:
			err = copyFile(real, guest)
		}
		if err != nil {
			return err
		}
	}
	if err := buildDev(shmMB, filepath.Join(r, "dev")); err != nil {
		return err
	}
	return buildProc(filepath.Join(r, "proc"))
}

// underHostDirs reports whether path lies in one of hostDirs, which the root shows at the host's
// paths.
func underHostDirs(path string) bool {
	for _, d := range hostDirs {
		if strings.HasPrefix(path, "/"+d+"/") {
			return true
		}
	}
	return false
}

// sandboxHosts is /etc/hosts in an environment (each has a network namespace of its own): localhost is
// 127.0.0.1 only (where the Runtime API and the extension ports listen, so that a client that
// tries ::1 first and does not fall back still connects), and none of the host's names leak in.
// sandbox.localdomain is Lambda's name for the environment itself: extensions listen there for
// the Telemetry API's deliveries.
const sandboxHosts = "127.0.0.1\tlocalhost localhost.localdomain sandbox.localdomain sandbox\n::1\tip6-localhost ip6-loopback\n"

// finishRoot mounts the function's own directories and /tmp into the root prepared at r, enters
// it and makes it read-only; for a prestarted runtime it mounts what it has and leaves entering
// the root to the bind.
func finishRoot(r string, cfg initConfig) error {
	if err := os.WriteFile(filepath.Join(r, "etc", "hosts"), []byte(sandboxHosts), 0o644); err != nil {
		return fmt.Errorf("/etc/hosts: %w", err)
	}
	for _, m := range []struct{ host, guest string }{
		{cfg.TaskDir, "var/task"}, {cfg.OptDir, "opt"}, {cfg.RuntimeDir, "var/runtime"},
	} {
		if m.host == "" {
			continue // an empty directory in the read-only root
		}
		if err := hiddenRO(m.host, filepath.Join(r, m.guest)); err != nil {
			return err
		}
	}
	if err := unix.Mount("tmpfs", filepath.Join(r, "tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV,
		"mode=1777,size="+strconv.Itoa(cfg.TmpMB)+"m"); err != nil {
		return fmt.Errorf("tmpfs /tmp: %w", err)
	}
	if err := bindInterpreter(r, cfg.Interp); err != nil {
		return err
	}
	if cfg.Prestart {
		return nil // enterRoot once bound: the function's directories are mounted from the host's tree
	}
	return enterRoot(r)
}

// enterRoot makes the root at r this mount namespace's root, with the host's tree gone, and
// makes it read-only.
func enterRoot(r string) error {
	if err := unix.Chdir(r); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	// The old root is stacked on ".": detach it and with it every host mount.
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", roFlags, ""); err != nil {
		return fmt.Errorf("remount / read-only: %w", err)
	}
	return nil
}

// systemdResolvConf lists the name servers systemd-resolved forwards to.
const systemdResolvConf = "/run/systemd/resolve/resolv.conf"

// resolvConf is the resolv.conf environments get: the host's, unless all its name servers are on
// the host's loopback (a local stub such as systemd-resolved's 127.0.0.53, which an environment
// cannot reach) and upstream has some that are not.
func resolvConf(host, upstream string) string {
	if lo, other := nameservers(host); lo > 0 && other == 0 {
		if _, other := nameservers(upstream); other > 0 {
			return upstream
		}
	}
	return host
}

// nameservers counts the loopback and other name servers the resolv.conf at path names (none
// when it cannot be read).
func nameservers(path string) (loopback, other int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		if a, err := netip.ParseAddr(f[1]); err == nil && a.IsLoopback() {
			loopback++
		} else {
			other++
		}
	}
	return loopback, other
}

// hiddenRO mounts the directory host at guest (an existing directory of the root's tmpfs),
// read-only, without its host path showing in the environment's mountinfo: a bind mount shows its
// path inside the source file system there, an overlay only its options, and its layers are given
// as /proc/self/fd/N. (An overlay without an upper layer needs two lower ones: the second is an
// empty directory made under guest, which the overlay then covers.) A kernel without overlayfs
// gets a bind mount.
func hiddenRO(host, guest string) error {
	hfd, err := unix.Open(host, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", host, err)
	}
	defer unix.Close(hfd)
	if err := os.Mkdir(guest, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	empty := filepath.Join(guest, ".empty")
	if err := os.Mkdir(empty, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	efd, err := unix.Open(empty, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(efd)
	opts := "lowerdir=/proc/self/fd/" + strconv.Itoa(hfd) + ":/proc/self/fd/" + strconv.Itoa(efd)
	err = unix.Mount("none", guest, "overlay", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, opts)
	if errors.Is(err, unix.ENODEV) {
		return bindRO(host, guest, true, roFlags)
	}
	if err != nil {
		return fmt.Errorf("overlay %s: %w", host, err)
	}
	return nil
}

// copyFile copies the host's file src to the new file dst (a few KB of /etc).
func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// bindRO bind-mounts host onto guest (created as a directory or an empty file) read-only.
func bindRO(host, guest string, dir bool, flags uintptr) error {
	if dir {
		if err := os.Mkdir(guest, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	} else {
		f, err := os.OpenFile(guest, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		f.Close()
	}
	if err := unix.Mount(host, guest, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", host, err)
	}
	// The remount must keep the flags the source mount is locked with (in a user namespace).
	var st unix.Statfs_t
	if err := unix.Statfs(guest, &st); err == nil {
		if st.Flags&unix.ST_NOEXEC != 0 {
			flags |= unix.MS_NOEXEC
		}
		if st.Flags&unix.ST_NODEV != 0 {
			flags |= unix.MS_NODEV
		}
		if st.Flags&unix.ST_NOSUID != 0 {
			flags |= unix.MS_NOSUID
		}
	}
	if err := unix.Mount("", guest, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", host, err)
	}
	return nil
}

// buildDev makes a small /dev with only the harmless devices, /dev/shm and the fd links.
func buildDev(shmMB int, dev string) error {
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "size=64k,nr_inodes=64,mode=755"); err != nil {
		return fmt.Errorf("tmpfs /dev: %w", err)
	}
	for _, d := range hostDevs {
		if _, err := os.Stat("/dev/" + d); err != nil {
			continue
		}
		if err := bindRO("/dev/"+d, filepath.Join(dev, d), false, devFlags); err != nil {
			return err
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2", "core": "/proc/kcore"} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC,
		"mode=1777,size="+strconv.Itoa(shmMB)+"m"); err != nil {
		return fmt.Errorf("tmpfs /dev/shm: %w", err)
	}
	if err := unix.Mount("", dev, "", devFlags, ""); err != nil {
		return fmt.Errorf("remount /dev read-only: %w", err)
	}
	return nil
}

// buildProc mounts a fresh /proc for the new pid namespace and fences off the host-wide parts.
func buildProc(proc string) error {
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	for _, p := range procReadOnly {
		path := filepath.Join(proc, p)
		if _, err := os.Lstat(path); err != nil {
			continue
		}
		if err := unix.Mount(path, path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind /proc/%s: %w", p, err)
		}
		if err := unix.Mount("", path, "", roFlags|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("remount /proc/%s read-only: %w", p, err)
		}
	}
	for _, p := range procMasked {
		path := filepath.Join(proc, p)
		if _, err := os.Lstat(path); err != nil {
			continue
		}
		if err := unix.Mount("/dev/null", path, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("mask /proc/%s: %w", p, err)
		}
		if err := unix.Mount("", path, "", devFlags, ""); err != nil {
			return fmt.Errorf("mask /proc/%s: %w", p, err)
		}
	}
	return nil
}
