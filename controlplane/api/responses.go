// What every resource's handlers share: paging, list and item bodies, and how store errors become
// problems.

package api

import (
	"errors"
	"net/http"

	"github.com/jeturing/sajet-domains/controlplane/store"
)

type pageInput struct {
	Limit int   `query:"limit" minimum:"1" maximum:"500" default:"100"`
	After int64 `query:"after" minimum:"0" doc:"Return ids greater than this (cursor)"`
}

type idInput struct {
	ID int64 `path:"id" minimum:"1"`
}

type listOutput[T any] struct {
	Body struct {
		Items []T `json:"items"`
	}
}

type itemOutput[T any] struct {
	Body T
}

func list[T, U any](items []T, conv func(T) U) *listOutput[U] {
	out := &listOutput[U]{}
	out.Body.Items = make([]U, 0, len(items))
	for _, it := range items {
		out.Body.Items = append(out.Body.Items, conv(it))
	}
	return out
}

func storeError(err error) error {
	var ce *store.ConflictError
	if errors.As(err, &ce) {
		return problem(http.StatusConflict, ce.Code, ce.Message)
	}
	var me *store.MissingError
	if errors.As(err, &me) {
		return problem(http.StatusNotFound, me.Code, me.Message)
	}
	if errors.Is(err, store.ErrNotFound) {
		return problem(http.StatusNotFound, "not_found", msgNotFound)
	}
	return err
}

// Changes to routing objects (customers, tunnels, tenant deployments) are admin-only. A customer
// token sees its own customer and tenant deployments; another customer's object is a 404 (as if
// it did not exist), its own a 403 when it tries to change it. Deletes are refused with 409 while
// anything still uses the object, and never cascade.

// notFoundAs maps the store's ErrNotFound to a 404 with the object's own code, and the rest as
// storeError does.
func notFoundAs(err error, nf func() error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nf()
	}
	return storeError(err)
}
