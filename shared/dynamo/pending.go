package dynamo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/contactlevel/metering/shared/credits"
)

// How a balance change gets its ledger entry, with an exact "balance after",
// while debits keep changing the same item.
//
// A transaction cannot return the item it updated, and a ledger entry
// written in the same transaction as the change would have to know the
// balance beforehand: conditioning the change on the whole balance being as
// read would make every grant race every debit of a busy organization and
// could starve. Instead the change itself records, in the same atomic write,
//
//   - the entries it makes (attribute "pending:<batch>"), and
//   - a snapshot of the balance just before it ("pending:<batch>:s", ":p",
//     ":b": SET operands read the item as it was before the update),
//
// so the balance after each entry is computed exactly from the snapshot,
// whenever it is computed. A second step (settle) writes the entries to the
// ledger and removes the pending attributes in one transaction conditioned
// on them still being there, so an entry is written exactly once. If a
// process dies between the two steps, the next admin read of the
// organization (show, ledger list, any change) settles what it finds.
// Pending attributes ride along on the organization item for those few
// milliseconds only; the debit ignores them.

// pendingPrefix starts the names of the pending attributes on an organization item.
const pendingPrefix = "pending:"

// pendingEntry is a ledger entry waiting to be settled: the stored ledger
// shape (balance_after not yet known) plus the expiry of a new bonus grant,
// which the balance-after computation needs.
type pendingEntry struct {
	ledgerItem
	GrantExp int64 `dynamodbav:"grant_exp,omitempty"`
}

// pendingBatch is the value of "pending:<batch>".
type pendingBatch struct {
	Entries []pendingEntry `dynamodbav:"entries"`
	// Ref is the grant reference whose marker records the result, if any.
	Ref string `dynamodbav:"ref,omitempty"`
}

// pendingSet adds to upd the attributes that record entries and the balance
// before the update they are part of.
func pendingSet(upd expression.UpdateBuilder, batch string, entries []pendingEntry, ref string) (expression.UpdateBuilder, error) {
	v, err := attributevalue.Marshal(pendingBatch{Entries: entries, Ref: ref})
	if err != nil {
		return upd, fmt.Errorf("encode pending entries: %w", err)
	}
	p := pendingPrefix + batch
	upd = upd.Set(expression.Name(p), expression.Value(v)).
		Set(expression.Name(p+":s"), expression.IfNotExists(expression.Name(attrSubscription), expression.Value(0))).
		Set(expression.Name(p+":p"), expression.IfNotExists(expression.Name(attrPurchased), expression.Value(0))).
		Set(expression.Name(p+":b"), expression.IfNotExists(expression.Name(attrBonus), expression.Value(map[string]grantItem{})))
	return upd, nil
}

// newPendingEntry is the pending form of e; grantExp is a new bonus grant's expiry.
func newPendingEntry(e credits.Entry, grantExp time.Time) pendingEntry {
	pe := pendingEntry{ledgerItem: ledgerItem{
		OrgID: e.OrgID, SK: LedgerSK(e), ID: e.ID, At: formatTime(e.At), Type: string(e.Type),
		Bucket: string(e.Bucket), GrantID: e.GrantID, Amount: e.Amount, Reference: e.Reference,
		Reason: e.Reason, Period: e.Period,
	}}
	if !grantExp.IsZero() {
		pe.GrantExp = grantExp.Unix()
	}
	return pe
}

// settleable is one batch found on an organization item, with its entries'
// balances computed.
type settleable struct {
	batch   string
	ref     string
	entries []credits.Entry
}

// pendingBatches reads every pending batch of an organization item and
// computes each entry's balance after from the batch's snapshot.
func pendingBatches(item map[string]types.AttributeValue) ([]settleable, error) {
	var out []settleable
	for name, v := range item {
		if !strings.HasPrefix(name, pendingPrefix) || strings.Count(name, ":") != 1 {
			continue
		}
		var pb pendingBatch
		if err := attributevalue.Unmarshal(v, &pb); err != nil {
			return nil, fmt.Errorf("decode %s: %w", name, err)
		}
		snap := map[string]types.AttributeValue{}
		for k, attr := range map[string]string{":s": attrSubscription, ":p": attrPurchased, ":b": attrBonus} {
			if sv, ok := item[name+k]; ok {
				snap[attr] = sv
			}
		}
		b, err := decodeBalance(snap)
		if err != nil {
			return nil, err
		}
		s := settleable{batch: strings.TrimPrefix(name, pendingPrefix), ref: pb.Ref}
		for _, pe := range pb.Entries {
			e := entryFromItem(pe.ledgerItem)
			b = applyEntry(b, e, pe.GrantExp)
			e.BalanceAfter = b.Total(e.At)
			s.entries = append(s.entries, e)
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].batch < out[j].batch })
	return out, nil
}

// applyEntry is b after e; a bonus entry either adds a new grant (grantExp
// is its expiry, 0 for none) or changes an existing one.
func applyEntry(b credits.Balance, e credits.Entry, grantExp int64) credits.Balance {
	switch e.Bucket {
	case credits.Subscription:
		b.Subscription += e.Amount
	case credits.Purchased:
		b.Purchased += e.Amount
	case credits.Bonus:
		for i := range b.Bonus {
			if b.Bonus[i].ID == e.GrantID {
				b.Bonus = append([]credits.Grant(nil), b.Bonus...)
				b.Bonus[i].Remaining += e.Amount
				return b
			}
		}
		g := credits.Grant{ID: e.GrantID, Remaining: e.Amount}
		if grantExp != 0 {
			g.ExpiresAt = time.Unix(grantExp, 0).UTC()
		}
		b.Bonus = append(append([]credits.Grant(nil), b.Bonus...), g)
	}
	return b
}

// settle writes the batches' entries to the ledger and removes them from
// the organization item, each batch in one transaction. A batch that
// another process settled first is skipped: the condition on its pending
// attribute makes the ledger write happen once.
func settle(ctx context.Context, client Client, table, org string, batches []settleable) error {
	for _, s := range batches {
		var items []types.TransactWriteItem
		for _, e := range s.entries {
			put, err := LedgerPut(table, e)
			if err != nil {
				return err
			}
			items = append(items, put)
		}
		p := pendingPrefix + s.batch
		upd := expression.Remove(expression.Name(p)).Remove(expression.Name(p + ":s")).
			Remove(expression.Name(p + ":p")).Remove(expression.Name(p + ":b"))
		expr, err := expression.NewBuilder().WithUpdate(upd).
			WithCondition(expression.AttributeExists(expression.Name(p))).Build()
		if err != nil {
			return err
		}
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(table), Key: orgKey(org),
			UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
			ExpressionAttributeNames: expr.Names(),
		}})
		if s.ref != "" {
			done, err := markerDone(table, org, s.ref, s.entries)
			if err != nil {
				return err
			}
			items = append(items, done)
		}
		_, err = client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err != nil && !alreadySettled(err, len(s.entries)) {
			return fmt.Errorf("settle ledger entries: %w", err)
		}
	}
	return nil
}

// alreadySettled reports whether a settle transaction failed only because
// its pending attribute was gone: another process settled the batch.
func alreadySettled(err error, orgIndex int) bool {
	var tc *types.TransactionCanceledException
	if !errors.As(err, &tc) || len(tc.CancellationReasons) <= orgIndex {
		return false
	}
	return aws.ToString(tc.CancellationReasons[orgIndex].Code) == "ConditionalCheckFailed"
}

// settleItem settles whatever the given organization item has pending.
func settleItem(ctx context.Context, client Client, table, org string, item map[string]types.AttributeValue) error {
	batches, err := pendingBatches(item)
	if err != nil || len(batches) == 0 {
		return err
	}
	return settle(ctx, client, table, org, batches)
}

func entryFromItem(it ledgerItem) credits.Entry {
	at, _ := time.Parse(time.RFC3339Nano, it.At)
	return credits.Entry{
		ID: it.ID, OrgID: it.OrgID, At: at, Type: credits.EntryType(it.Type), Bucket: credits.Bucket(it.Bucket),
		GrantID: it.GrantID, Amount: it.Amount, Reference: it.Reference, Reason: it.Reason,
		Period: it.Period, BalanceAfter: it.BalanceAfter,
	}
}
