package api

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"
)

type timeValue struct{ t time.Time }

// Scan accepts what either driver returns for a TIMESTAMP column.
func (v *timeValue) Scan(src any) error {
	switch x := src.(type) {
	case time.Time:
		v.t = x.UTC()
	case nil:
		v.t = time.Time{}
	default:
		return fmt.Errorf("unexpected time type %T", src)
	}
	return nil
}

// Value lets GORM write it back (unused, but keeps the type complete).
func (v timeValue) Value() (driver.Value, error) { return v.t, nil }

func (v jsonTime) MarshalJSON() ([]byte, error) { return json.Marshal(fmtTimeUTC(v.t)) }

// fmtTimeUTC formats a time as the contract wants (UTC, second precision).
func fmtTimeUTC(t time.Time) string { return t.UTC().Format(time.RFC3339) }
