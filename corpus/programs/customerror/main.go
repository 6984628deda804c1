// Command customerror panics with a value of its own error type. The runtime
// calls the value's Error method before it prints anything, so the panic
// line shows that text rather than the type and an address.
package main

import "fmt"

// ValidationError reports one invalid field of an order.
type ValidationError struct {
	OrderID int
	Field   string
	Reason  string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("order %d: field %q %s", e.OrderID, e.Field, e.Reason)
}

// Order is a customer order.
type Order struct {
	ID       int
	Quantity int
}

//go:noinline
func validate(o Order) error {
	if o.Quantity <= 0 {
		return &ValidationError{OrderID: o.ID, Field: "quantity", Reason: "must be positive"}
	}
	return nil
}

// mustAccept panics when the order is invalid, the way a loader of trusted
// input would.
//
//go:noinline
func mustAccept(o Order) {
	if err := validate(o); err != nil {
		panic(err)
	}
}

func main() {
	mustAccept(Order{ID: 41, Quantity: 2})
	mustAccept(Order{ID: 42, Quantity: -3})
}
