package devnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

// seedTimeout bounds creating the sample accounts and their records.
const seedTimeout = 2 * time.Minute

// seedUser is a sample account and what it posts.
type seedUser struct {
	name  string // handle prefix and display name
	bio   string
	posts []string
}

// seedUsers are created in this order; each follows the next, the last
// the first.
var seedUsers = []seedUser{
	{"Alice", "Alice's account on the Welkin devnet.", []string{
		"Hello from Alice on the Welkin devnet!",
		"Alice's second post: the PDS, the PLC directory and me, all on loopback.",
	}},
	{"Bob", "Bob's account on the Welkin devnet.", []string{
		"Bob here. First post.",
		"Bob's second post, to have something to scroll.",
	}},
	{"Carol", "Carol's account on the Welkin devnet.", []string{
		"Carol says hello.",
		"Carol's second post.",
	}},
}

// seed creates the sample accounts through the PDS's XRPC API, as any
// client would, then gives each a profile, its posts and a follow.
func seed(ctx context.Context, pdsURL string, log *slog.Logger) ([]Account, error) {
	ctx, cancel := context.WithTimeout(ctx, seedTimeout)
	defer cancel()
	httpc := loopbackClient(30 * time.Second)
	anon := &xrpc.Client{Host: pdsURL, HTTPClient: httpc, UserAgent: "welkin-devnet"}

	accounts := make([]Account, 0, len(seedUsers))
	clients := make([]*xrpc.Client, 0, len(seedUsers))
	for _, u := range seedUsers {
		handle := strings.ToLower(u.name) + HandleDomain
		password := randomSecret()
		email := strings.ToLower(u.name) + "@example.com"
		out, err := atproto.ServerCreateAccount(ctx, anon, &atproto.ServerCreateAccount_Input{
			Handle:   handle,
			Email:    &email,
			Password: &password,
		})
		if err != nil {
			var xerr *xrpc.Error
			if errors.As(err, &xerr) && (xerr.Name == "HandleNotAvailable" || strings.Contains(xerr.Message, "already taken")) {
				return nil, fmt.Errorf("devnet: seeding: %s already exists on the PDS but the manifest does not list it (an earlier seed was interrupted?); start over with a new data directory: %w", handle, err)
			}
			return nil, fmt.Errorf("devnet: seeding: creating %s: %w", handle, err)
		}
		did, err := syntax.ParseDID(out.Did)
		if err != nil {
			return nil, fmt.Errorf("devnet: seeding: createAccount for %s returned a bad DID: %w", handle, err)
		}
		accounts = append(accounts, Account{Handle: syntax.Handle(handle), DID: did, Password: password})
		clients = append(clients, &xrpc.Client{
			Host:       pdsURL,
			HTTPClient: httpc,
			UserAgent:  "welkin-devnet",
			Auth:       xrpc.NewSessionAuth(out.AccessJwt, out.RefreshJwt),
		})
		log.Info("devnet: created account", "handle", handle, "did", did)
	}

	for i, u := range seedUsers {
		a, c := accounts[i], clients[i]
		profile := "self"
		if err := createRecord(ctx, c, a.DID, "app.bsky.actor.profile", &profile, map[string]any{
			"$type":       "app.bsky.actor.profile",
			"displayName": u.name,
			"description": u.bio,
			"createdAt":   now(),
		}); err != nil {
			return nil, err
		}
		for _, text := range u.posts {
			if err := createRecord(ctx, c, a.DID, "app.bsky.feed.post", nil, map[string]any{
				"$type":     "app.bsky.feed.post",
				"text":      text,
				"langs":     []any{"en"},
				"createdAt": now(),
			}); err != nil {
				return nil, err
			}
		}
		next := accounts[(i+1)%len(accounts)]
		if err := createRecord(ctx, c, a.DID, "app.bsky.graph.follow", nil, map[string]any{
			"$type":     "app.bsky.graph.follow",
			"subject":   string(next.DID),
			"createdAt": now(),
		}); err != nil {
			return nil, err
		}
	}
	return accounts, nil
}

func createRecord(ctx context.Context, c *xrpc.Client, did syntax.DID, collection string, rkey *string, record map[string]any) error {
	_, err := atproto.RepoCreateRecord(ctx, c, &atproto.RepoCreateRecord_Input{
		Repo:       string(did),
		Collection: collection,
		Rkey:       rkey,
		Record:     record,
	})
	if err != nil {
		return fmt.Errorf("devnet: seeding: creating a %s record for %s: %w", collection, did, err)
	}
	return nil
}

// now is the current time in the datetime form records use.
func now() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }
