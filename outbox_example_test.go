package tokenvault_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/tokenvault/tokenvault"
)

func ExampleVault_Subscribe() {
	v, cleanup := openExampleVault()
	defer cleanup()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	token, err := v.TokenizeCard(ctx, "4111 1111 1111 1111")
	if err != nil {
		log.Fatal(err)
	}
	if err := v.SuspendToken(ctx, token, tokenvault.WithReason("card reported lost")); err != nil {
		log.Fatal(err)
	}

	// The handler runs once per event, in Seq order. Returning an error makes
	// Subscribe retry the event with backoff. The example stops after two
	// events, but a service runs Subscribe until it shuts down.
	err = v.Subscribe(ctx, "example", func(ctx context.Context, ev tokenvault.Event) error {
		fmt.Printf("%d %s, state %s, reason %q\n", ev.Seq, ev.Type, ev.To, ev.Reason)
		if ev.Seq == 2 {
			cancel()
		}
		return nil
	}, nil)
	if !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
	// Output:
	// 1 created, state active, reason ""
	// 2 suspended, state suspended, reason "card reported lost"
}

func ExampleVault_Events() {
	v, cleanup := openExampleVault()
	defer cleanup()
	ctx := context.Background()

	for _, pan := range []string{"4111 1111 1111 1111", "5555 5555 5555 4444", "3782 822463 10005"} {
		if _, err := v.TokenizeCard(ctx, pan); err != nil {
			log.Fatal(err)
		}
	}

	// A polling consumer keeps the Seq of the last event it handled and reads
	// the events after it.
	after := uint64(0)
	for {
		events, err := v.Events(ctx, after, 2)
		if err != nil {
			log.Fatal(err)
		}
		if len(events) == 0 {
			break
		}
		for _, ev := range events {
			fmt.Println(ev.Seq, ev.Type)
		}
		after = events[len(events)-1].Seq
	}
	// Output:
	// 1 created
	// 2 created
	// 3 created
}
