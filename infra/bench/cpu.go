package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuClock reads the CPU time used so far by this process (the gateway, the
// functions and the load, all in one) and by DynamoDB Local's JVM, so that
// each cell can say which side its requests spent the machine's cores on.
type cpuClock struct {
	jvmPid int // 0 when DynamoDB Local was not started by this run
}

// cpuTimes is a reading of cpuClock.
type cpuTimes struct {
	self, jvm time.Duration
}

func (c cpuClock) now() cpuTimes {
	var t cpuTimes
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		t.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if c.jvmPid > 0 {
		t.jvm = procCPU(c.jvmPid)
	}
	return t
}

// procCPU is utime+stime of pid from /proc (Linux), 0 where unavailable.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	// Linux reports clock ticks of USER_HZ, 100 on every architecture Go supports.
	return time.Duration(utime+stime) * (time.Second / 100)
}

// jvmPid reads the pid file infra/dynamodb-local.sh keeps for port.
func jvmPid(root string, port int) int {
	b, err := os.ReadFile(filepath.Join(root, ".cache", "dynamodb-local", "run", "port-"+strconv.Itoa(port)+".pid"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}
