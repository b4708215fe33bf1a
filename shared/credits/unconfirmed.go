package credits

import "errors"

// ErrUnconfirmed means storage may or may not have applied a charge: the
// write was sent but its answer was lost (a timeout, a 5xx, a dropped
// connection). Retrying it blindly could charge twice, so it is not
// retried; the caller tells the client the outcome is unknown.
var ErrUnconfirmed = errors.New("the charge was sent but not confirmed; it may have been made once")
