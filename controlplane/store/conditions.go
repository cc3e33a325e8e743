package store

import (
	"fmt"
	"strings"
)

// conditions builds the WHERE clause of a list and its arguments, numbered in order.
type conditions struct {
	sql  []string
	args []any
}

func where(fixed ...string) *conditions { return &conditions{sql: fixed} }

// add appends cond, whose %d (or %[1]d) is its argument's number, with the argument v.
func (c *conditions) add(cond string, v any) {
	c.args = append(c.args, v)
	c.sql = append(c.sql, fmt.Sprintf(cond, len(c.args)))
}

// fixed appends a condition without an argument.
func (c *conditions) fixed(cond string) { c.sql = append(c.sql, cond) }

func (c *conditions) String() string {
	if len(c.sql) == 0 {
		return "true"
	}
	return strings.Join(c.sql, " AND ")
}

// newestFirst is the clause and its arguments for a page of at most limit rows (100 when not
// positive), newest id first.
func (c *conditions) newestFirst(limit int) (string, []any) {
	if limit <= 0 {
		limit = 100
	}
	args := append(c.args, limit)
	return c.String() + fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args)), args
}
