package action

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A process the script left behind that moved to its own session or
// process group (setsid) is out of reach of the group kill. The ones that
// still hold the script's output are found by the pipe they hold: every
// process with a descriptor on that pipe is the script's, since the pipe
// was made for this run and only the script's descendants inherited it.

// holderRounds bounds the scans: a holder may fork (passing the pipe on)
// before the SIGKILL reaches it.
const holderRounds = 4

// pipeInode returns the inode number of the pipe open at f.
func pipeInode(f *os.File) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("stat output pipe: %w", err)
	}
	return st.Ino, nil
}

// killHolders sends SIGKILL to every process other than imon itself that
// holds the pipe ino, waits up to wait for them to be gone, and returns the
// ones killed outside the process group pgid (whose members the caller
// killed already) and the ones still there afterwards (escaped). err is
// set when /proc could not be searched.
func killHolders(ino uint64, pgid int, wait time.Duration) (killed, escaped []int, err error) {
	type victim struct{ pid, fd int }
	var victims []victim
	defer func() {
		for _, v := range victims {
			unix.Close(v.fd)
		}
	}()
	for range holderRounds {
		pids, err := pipeHolders(ino)
		if err != nil {
			return nil, nil, err
		}
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			// Through a pidfd, so that a pid reused meanwhile is not hit.
			fd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				continue // gone already
			}
			inGroup := false
			if g, err := unix.Getpgid(pid); err == nil && g == pgid {
				inGroup = true
			}
			if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
				unix.Close(fd)
				continue
			}
			victims = append(victims, victim{pid, fd})
			if !inGroup && !slices.Contains(killed, pid) {
				killed = append(killed, pid)
			}
		}
	}
	deadline := time.Now().Add(wait)
	for _, v := range victims {
		if !pidfdExited(v.fd, time.Until(deadline)) && !slices.Contains(escaped, v.pid) {
			escaped = append(escaped, v.pid)
		}
	}
	// Anything still holding the pipe now escaped too (it forked faster
	// than the rounds, or is out of imon's reach).
	pids, err := pipeHolders(ino)
	if err != nil {
		return killed, escaped, err
	}
	for _, pid := range pids {
		if !slices.Contains(escaped, pid) {
			escaped = append(escaped, pid)
		}
	}
	killed = slices.DeleteFunc(killed, func(pid int) bool { return slices.Contains(escaped, pid) })
	return killed, escaped, nil
}

// pidfdExited waits up to wait for the process of pidfd fd to exit.
func pidfdExited(fd int, wait time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(wait)
	for {
		n, err := unix.Poll(fds, int(max(time.Until(deadline), 0).Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n > 0
	}
}

// pipeHolders lists the processes, imon itself excepted, with a descriptor
// on the pipe ino. Processes whose descriptors imon may not read are not
// seen (imon runs as root, so that is none in practice).
func pipeHolders(ino uint64) ([]int, error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("search /proc for processes holding the output: %w", err)
	}
	self := os.Getpid()
	want := "pipe:[" + strconv.FormatUint(ino, 10) + "]"
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		dir := "/proc/" + p.Name() + "/fd/"
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, fd := range fds {
			if target, err := os.Readlink(dir + fd.Name()); err == nil && target == want {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids, nil
}
