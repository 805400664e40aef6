package txotel_test

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
	"github.com/txkit/txkit/txotel"
)

// A transaction whose first attempt fails with a serialization failure
// and whose second commits. By default the first attempt runs in the
// txn.WithTx span and only the retry has a txn.attempt span; with
// SpanEveryAttempt each attempt has one.
func ExampleOptions_spanEveryAttempt() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	for _, every := range []bool{false, true} {
		spans := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
		obs, err := txotel.New(txotel.Options{TracerProvider: tp, SpanEveryAttempt: every})
		if err != nil {
			panic(err)
		}
		calls := 0
		opts := txn.Options{Observer: obs, Retry: &retry.Policy{MaxAttempts: 3, InitialInterval: time.Millisecond}}
		err = txn.WithTx(ctx, pool, opts, func(ctx context.Context, tx pgx.Tx) error {
			calls++
			if calls == 1 {
				_, err := tx.Exec(ctx, "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
				return err
			}
			_, err := tx.Exec(ctx, "SELECT 1")
			return err
		})
		fmt.Printf("SpanEveryAttempt=%v: %v\n", every, err)
		for _, s := range spans.Ended() {
			fmt.Print("  ", s.Name())
			for _, kv := range s.Attributes() {
				if kv.Key == txotel.KeyTxAttempt || kv.Key == txotel.KeyTxAttempts {
					fmt.Printf(" %s=%s", kv.Key, kv.Value.String())
				}
			}
			fmt.Println()
		}
		_ = tp.Shutdown(ctx)
	}
	// Output:
	// SpanEveryAttempt=false: <nil>
	//   txn.attempt txn.attempt=2
	//   txn.WithTx txn.attempts=2
	// SpanEveryAttempt=true: <nil>
	//   txn.attempt txn.attempt=1
	//   txn.attempt txn.attempt=2
	//   txn.WithTx txn.attempts=2
}
