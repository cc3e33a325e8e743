package mailer

import (
	"fmt"
	"time"
)

var monthsES = [...]string{"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
	"octubre", "noviembre", "diciembre"}

// FormatDate writes an instant for a reader of lang, in UTC: "6 de diciembre de 2026, 14:05 UTC"
// or "December 6, 2026, 14:05 UTC". Go has no locale formatting, so the Spanish months are ours.
func FormatDate(t time.Time, lang string) string {
	t = t.UTC()
	if lang == "en" {
		return t.Format("January 2, 2006, 15:04 UTC")
	}
	return fmt.Sprintf("%d de %s de %d, %s UTC", t.Day(), monthsES[t.Month()-1], t.Year(), t.Format("15:04"))
}
