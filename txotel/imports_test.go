package txotel_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Only txotel imports OpenTelemetry, and only the API outside its tests;
// the SDK is for tests and examples/observe.
func TestOnlyTxotelImportsOpenTelemetry(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	n := 0
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		n++
		dir := filepath.ToSlash(filepath.Dir(path))
		test := strings.HasSuffix(path, "_test.go")
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(p, "go.opentelemetry.io/") {
				continue
			}
			switch {
			case dir == "../examples/observe":
			case dir == "../txotel" && (test || !strings.HasPrefix(p, "go.opentelemetry.io/otel/sdk")):
			default:
				t.Errorf("%s imports %s", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Fatalf("walked only %d files", n)
	}
}
