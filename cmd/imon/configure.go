package main

func cmdConfigure(args []string) error {
	return usagef("configure: not implemented yet")
}
