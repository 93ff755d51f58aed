package main

import (
	"errors"
	"flag"
)

// parseInterleaved parses flags that may come before or after the
// positional arguments ("welkin resolve alice.test --plc-url URL"), which
// the flag package alone does not allow. A lone "--" ends flag parsing.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse consumed a "--" if it stopped there; everything after
		// it is positional.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// flagExitCode is the exit code for a flag parsing error: 0 when the user
// asked for help (the usage text has been printed), 2 for a usage error.
func flagExitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
