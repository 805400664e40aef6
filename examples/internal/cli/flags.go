package cli

import (
	"flag"
	"fmt"
)

// Parse parses args with fs and rejects what is left after the flags: the
// examples take no positional arguments, so one is a mistake to report
// rather than ignore.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return nil
}
