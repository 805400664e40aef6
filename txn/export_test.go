package txn

import "context"

// BeginWith starts and rolls back a transaction on db with beginSQL as
// WithTx would, for tests of a BEGIN the server refuses: Options that pass
// validation never make one.
func BeginWith(ctx context.Context, db Beginner, beginSQL string) error {
	b, err := begin(ctx, db, beginSQL)
	if err != nil {
		return err
	}
	defer b.done()
	rollback(ctx, b.tx)
	return nil
}
