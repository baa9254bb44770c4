package tokenvault_test

import (
	"context"
	"fmt"
	"log"

	"github.com/tokenvault/tokenvault"
)

func ExampleVault_ApplyNotification() {
	v, cleanup := openExampleVault()
	defer cleanup()
	ctx := context.Background()

	token, err := v.TokenizeCard(ctx, "4111 1111 1111 1111")
	if err != nil {
		log.Fatal(err)
	}

	// The card network reports the card lost. A redelivery of the same
	// notification changes nothing.
	lost := tokenvault.Notification{
		ID:       "vts-7f3a",
		Sender:   "visa-vts",
		Token:    token,
		Action:   tokenvault.NotifySuspend,
		Sequence: 1,
		Reason:   "card reported lost",
	}
	for range 2 {
		result, err := v.ApplyNotification(ctx, lost)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("suspend:", result)
	}

	// The issuer reissues the card under a new number, which the token now
	// stands for, and the network lifts its suspension.
	reissued := tokenvault.Notification{
		ID:         "vts-81c0",
		Sender:     "visa-vts",
		Token:      token,
		Action:     tokenvault.NotifyReissue,
		Sequence:   2,
		CardNumber: "4012 8888 8888 1881",
	}
	found := tokenvault.Notification{ID: "vts-81c1", Sender: "visa-vts", Token: token, Action: tokenvault.NotifyResume, Sequence: 3}
	for _, n := range []tokenvault.Notification{reissued, found} {
		result, err := v.ApplyNotification(ctx, n)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %s\n", n.Action, result)
	}

	card, err := v.DetokenizeCard(ctx, token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(card)
	// Output:
	// suspend: applied
	// suspend: duplicate
	// reissue: applied
	// resume: applied
	// ************1881
}
