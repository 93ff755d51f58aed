package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// InviteCode is an invite code and its uses
// (com.atproto.server.defs#inviteCode).
type InviteCode struct {
	Code string
	// Available is the number of uses the code allows in all, as the
	// reference reports "available"; the uses left are Available -
	// len(Uses).
	Available int
	Disabled  bool
	// ForAccount is the DID of the account the code was made for, or
	// "admin" (any string is kept).
	ForAccount string
	// CreatedBy is the DID or "admin" that created the code.
	CreatedBy string
	// CreatedAt is the current time when left zero on CreateInviteCodes.
	CreatedAt time.Time
	// Uses lists the accounts created with the code, oldest first.
	Uses []InviteUse
}

// InviteUse is one account creation with an invite code.
type InviteUse struct {
	UsedBy syntax.DID
	UsedAt time.Time
}

// batchSize bounds the values bound in one IN (...) list.
const batchSize = 500

// CreateInviteCodes stores codes in one transaction; ErrDuplicateInviteCode
// (and nothing stored) if one of them exists already. Uses given with a code
// are stored too and count against Available (for imports).
func (s *Store) CreateInviteCodes(ctx context.Context, codes []InviteCode) error {
	now := time.Now()
	for i := range codes {
		c := &codes[i]
		switch {
		case c.Code == "":
			return errors.New("pds store: empty invite code")
		case c.Available < 0:
			return fmt.Errorf("pds store: invite code %q: negative number of uses %d", c.Code, c.Available)
		case len(c.Uses) > c.Available:
			return fmt.Errorf("pds store: invite code %q: %d uses, more than the %d available", c.Code, len(c.Uses), c.Available)
		}
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, c := range codes {
			created := c.CreatedAt
			if created.IsZero() {
				created = now
			}
			_, err := tx.ExecContext(ctx, s.db.Rebind(
				`INSERT INTO pds_invite_codes (code, available_uses, used, disabled, for_account, created_by, created_at)
				 VALUES (?, ?, ?, ?, ?, ?, ?)`),
				c.Code, c.Available, len(c.Uses), c.Disabled, c.ForAccount, c.CreatedBy, micros(created))
			if _, dup := violatedIndex(err); dup {
				return fmt.Errorf("%w: %q", ErrDuplicateInviteCode, c.Code)
			} else if err != nil {
				return err
			}
			for _, u := range c.Uses {
				if _, err := tx.ExecContext(ctx, s.db.Rebind(
					`INSERT INTO pds_invite_code_uses (code, used_by, used_at) VALUES (?, ?, ?)`),
					c.Code, string(u.UsedBy), micros(u.UsedAt)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return wrap("create invite codes", err)
}

const inviteColumns = `code, available_uses, disabled, for_account, created_by, created_at`

// InviteCodesFor returns the invite codes made for forAccount (a DID or
// "admin"), oldest first, each with its uses, read in one snapshot.
func (s *Store) InviteCodesFor(ctx context.Context, forAccount string) ([]InviteCode, error) {
	var out []InviteCode
	err := s.db.ReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.readCodes(ctx, tx,
			`SELECT `+inviteColumns+` FROM pds_invite_codes WHERE for_account = ? ORDER BY created_at, code`,
			`SELECT u.code, u.used_by, u.used_at FROM pds_invite_code_uses u
			 JOIN pds_invite_codes c ON c.code = u.code
			 WHERE c.for_account = ? ORDER BY u.used_at, u.used_by`,
			forAccount)
		return err
	})
	return out, wrap("invite codes", err)
}

// GetInviteCode returns one invite code with its uses, or ErrNotFound.
func (s *Store) GetInviteCode(ctx context.Context, code string) (*InviteCode, error) {
	var out []InviteCode
	err := s.db.ReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.readCodes(ctx, tx,
			`SELECT `+inviteColumns+` FROM pds_invite_codes WHERE code = ?`,
			`SELECT code, used_by, used_at FROM pds_invite_code_uses WHERE code = ? ORDER BY used_at, used_by`,
			code)
		return err
	})
	if err != nil {
		return nil, wrap("invite code", err)
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	return &out[0], nil
}

// readCodes runs codesQ and then usesQ, both with the one argument arg, and
// attaches the uses to their codes.
func (s *Store) readCodes(ctx context.Context, tx *sql.Tx, codesQ, usesQ string, arg any) ([]InviteCode, error) {
	rows, err := tx.QueryContext(ctx, s.db.Rebind(codesQ), arg)
	if err != nil {
		return nil, err
	}
	var out []InviteCode
	index := make(map[string]int)
	for rows.Next() {
		var (
			c  InviteCode
			us int64
		)
		if err := rows.Scan(&c.Code, &c.Available, &c.Disabled, &c.ForAccount, &c.CreatedBy, &us); err != nil {
			rows.Close()
			return nil, err
		}
		c.CreatedAt = fromMicros(us)
		index[c.Code] = len(out)
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	rows, err = tx.QueryContext(ctx, s.db.Rebind(usesQ), arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			code, by string
			us       int64
		)
		if err := rows.Scan(&code, &by, &us); err != nil {
			return nil, err
		}
		if i, ok := index[code]; ok {
			out[i].Uses = append(out[i].Uses, InviteUse{UsedBy: syntax.DID(by), UsedAt: fromMicros(us)})
		}
	}
	return out, rows.Err()
}

// DisableInviteCodes disables the codes listed in codes and every code made
// for an account listed in accounts (com.atproto.admin.disableInviteCodes).
// Unknown codes and accounts are ignored.
func (s *Store) DisableInviteCodes(ctx context.Context, codes []string, accounts []string) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, set := range []struct {
			col  string
			vals []string
		}{{"code", codes}, {"for_account", accounts}} {
			for start := 0; start < len(set.vals); start += batchSize {
				batch := set.vals[start:min(start+batchSize, len(set.vals))]
				args := make([]any, len(batch))
				for i, v := range batch {
					args[i] = v
				}
				if _, err := tx.ExecContext(ctx, s.db.Rebind(
					`UPDATE pds_invite_codes SET disabled = TRUE WHERE `+set.col+` IN (`+placeholders(len(batch))+`)`),
					args...); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return wrap("disable invite codes", err)
}

// NewInviteCode returns a fresh random invite code in the reference PDS's
// form: hostname with its dots turned into dashes, then two groups of five
// lower-case base32 characters, as in "pds-example-com-abcde-23456" (50
// random bits). The hostname prefix makes a code hard to mistake for a
// link; with hostname "" the code is the random part alone.
func NewInviteCode(hostname string) string {
	tok := strings.ToLower(randomToken())
	if hostname == "" {
		return tok
	}
	return strings.ReplaceAll(hostname, ".", "-") + "-" + tok
}

// randomToken returns "XXXXX-XXXXX": ten random characters of the base32
// alphabet (A-Z, 2-7), 50 bits.
func randomToken() string {
	t := rand.Text() // 26 base32 characters, 130 random bits
	return t[:5] + "-" + t[5:10]
}
