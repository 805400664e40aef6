package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/txkit/txkit/retry"
)

func ExampleRetryable() {
	err := fmt.Errorf("transfer: %w", &pgconn.PgError{Code: "40001", Message: "could not serialize access"})
	fmt.Println(retry.Retryable(err))
	fmt.Println(retry.Retryable(errors.New("connection refused")))
	// Output:
	// true
	// false
}

func ExampleDo() {
	p := &retry.Policy{MaxAttempts: 3, InitialInterval: time.Millisecond}
	attempts := 0
	err := retry.Do(context.Background(), p, func(ctx context.Context) error {
		attempts++
		return &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}
	})
	fmt.Println(attempts, errors.Is(err, retry.ErrExhausted))
	var pgErr *pgconn.PgError
	fmt.Println(errors.As(err, &pgErr), pgErr.Code)
	// Output:
	// 3 true
	// true 40P01
}
