package route

// SetWatchReceiveBuffer sets the subscriptions' receive buffer (bytes) and
// returns a function restoring it.
func SetWatchReceiveBuffer(n int) (restore func()) {
	old := watchRcvBuf
	watchRcvBuf = n
	return func() { watchRcvBuf = old }
}
