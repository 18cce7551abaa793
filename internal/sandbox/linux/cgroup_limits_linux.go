// One environment's limits (memory, CPU in proportion to memory as on Lambda, pids) and the
// creation of its cgroups with them, in v1's or v2's files.

package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// limits for one environment.
type limits struct {
	memoryBytes int64
	cpuQuotaUs  int64 // per cpuPeriodUs; negative: no cap
	cpuShareUs  int64 // the steady-state quota, for the proportional weight
	pids        int64
}

const cpuPeriodUs = 100_000

// cpuQuota is the CPU share proportional to memory as on Lambda (1,769 MB = one vCPU), with a
// floor of 1 ms per 100 ms period so that tiny functions still make progress.
func cpuQuota(memoryMB int) int64 {
	q := int64(cpuPeriodUs) * int64(memoryMB) / 1769
	if q < 1000 {
		q = 1000
	}
	return q
}

// create makes the environment's cgroups and sets their limits.
func (e envCgroup) create(l limits) error {
	for _, d := range e.dirs() {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create cgroup: %w", err)
		}
	}
	if d, v2 := e.cg.dir("memory", e.id); d != "" {
		if v2 {
			if err := write(filepath.Join(d, "memory.max"), strconv.FormatInt(l.memoryBytes, 10)); err != nil {
				return fmt.Errorf("memory limit: %w", err)
			}
			if _, err := os.Stat(filepath.Join(d, "memory.swap.max")); err == nil {
				if err := write(filepath.Join(d, "memory.swap.max"), "0"); err != nil {
					return fmt.Errorf("swap limit: %w", err)
				}
			}
		} else {
			// memory+swap may never be below memory: lift it before changing memory.
			memsw := filepath.Join(d, "memory.memsw.limit_in_bytes")
			_, err := os.Stat(memsw)
			hasMemsw := err == nil
			if hasMemsw {
				if err := write(memsw, "-1"); err != nil {
					return fmt.Errorf("memory+swap limit: %w", err)
				}
			}
			if err := write(filepath.Join(d, "memory.limit_in_bytes"), strconv.FormatInt(l.memoryBytes, 10)); err != nil {
				return fmt.Errorf("memory limit: %w", err)
			}
			if hasMemsw {
				if err := write(filepath.Join(d, "memory.memsw.limit_in_bytes"), strconv.FormatInt(l.memoryBytes, 10)); err != nil {
					return fmt.Errorf("memory+swap limit: %w", err)
				}
			}
			// No swap even where memsw accounting is off.
			_ = write(filepath.Join(d, "memory.swappiness"), "0")
		}
	}
	if d, v2 := e.cg.dir("cpu", e.id); d != "" {
		// The weight keeps the shares proportional to memory when the host is busier than the
		// quotas add up to; the quota (setCPUQuota) caps the environment's CPU.
		if v2 {
			_ = write(filepath.Join(d, "cpu.weight"), strconv.FormatInt(max(1, 100*l.cpuShareUs/cpuPeriodUs), 10))
		} else {
			_ = write(filepath.Join(d, "cpu.shares"), strconv.FormatInt(max(2, 1024*l.cpuShareUs/cpuPeriodUs), 10))
			if err := write(filepath.Join(d, "cpu.cfs_period_us"), strconv.Itoa(cpuPeriodUs)); err != nil {
				return fmt.Errorf("cpu period: %w", err)
			}
		}
		if err := e.setCPUQuota(l.cpuQuotaUs); err != nil {
			return err
		}
	}
	if d, _ := e.cg.dir("pids", e.id); d != "" {
		if err := write(filepath.Join(d, "pids.max"), strconv.FormatInt(l.pids, 10)); err != nil {
			return fmt.Errorf("pids limit: %w", err)
		}
	}
	return nil
}

// setCPUQuota caps the environment's CPU at quotaUs per period; a negative quota lifts the cap.
func (e envCgroup) setCPUQuota(quotaUs int64) error {
	d, v2 := e.cg.dir("cpu", e.id)
	if d == "" {
		return nil
	}
	if v2 {
		q := "max"
		if quotaUs >= 0 {
			q = strconv.FormatInt(quotaUs, 10)
		}
		if err := write(filepath.Join(d, "cpu.max"), fmt.Sprintf("%s %d", q, cpuPeriodUs)); err != nil {
			return fmt.Errorf("cpu quota: %w", err)
		}
		return nil
	}
	if err := write(filepath.Join(d, "cpu.cfs_quota_us"), strconv.FormatInt(max(quotaUs, -1), 10)); err != nil {
		return fmt.Errorf("cpu quota: %w", err)
	}
	return nil
}
