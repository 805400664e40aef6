package isolation_test

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/txkit/txkit/isolation"
)

func ExampleParse() {
	for _, s := range []string{"repeatable_read", "Read Uncommitted", "", "serialisable"} {
		level, err := isolation.Parse(s)
		if errors.Is(err, isolation.ErrUnknownLevel) {
			fmt.Printf("%q: not a level\n", s)
			continue
		}
		fmt.Printf("%q: %v\n", s, level)
	}
	// Output:
	// "repeatable_read": REPEATABLE READ
	// "Read Uncommitted": READ COMMITTED
	// "": DEFAULT
	// "serialisable": not a level
}

func ExampleLevel_Prevents() {
	levels := []isolation.Level{isolation.ReadCommitted, isolation.RepeatableRead, isolation.Serializable}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "phenomenon\tREAD COMMITTED\tREPEATABLE READ\tSERIALIZABLE")
	for _, p := range isolation.Phenomena() {
		fmt.Fprint(w, p)
		for _, l := range levels {
			verdict := "allowed"
			if l.Prevents(p) {
				verdict = "prevented"
			}
			fmt.Fprint(w, "\t", verdict)
		}
		fmt.Fprintln(w)
	}
	_ = w.Flush()
	// Output:
	// phenomenon             READ COMMITTED  REPEATABLE READ  SERIALIZABLE
	// dirty read             prevented       prevented        prevented
	// non-repeatable read    allowed         prevented        prevented
	// phantom read           allowed         prevented        prevented
	// lost update            allowed         prevented        prevented
	// read skew              allowed         prevented        prevented
	// write skew             allowed         allowed          prevented
	// serialization anomaly  allowed         allowed          prevented
}
