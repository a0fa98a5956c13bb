package action

// SetAfterCheck installs a hook run between the script's check and its
// start, for tests of a swap in that window; it returns the undo.
func SetAfterCheck(f func(path string)) (undo func()) {
	afterCheck = f
	return func() { afterCheck = nil }
}
