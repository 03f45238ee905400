package db

import (
	"errors"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	msqlite "modernc.org/sqlite"
)

// sqliteDialector is GORM's SQLite dialector with error translation that
// understands the pure-Go driver: GORM's own Translate only recognises
// mattn/go-sqlite3's error type, so with modernc.org/sqlite a unique
// violation would never become gorm.ErrDuplicatedKey (and a duplicate email
// would be a 500 instead of a 409).
type sqliteDialector struct{ sqlite.Dialector }

// SQLite extended result codes (https://www.sqlite.org/rescode.html).
const (
	sqliteConstraintForeignKey = 787
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

// Translate maps constraint violations to GORM's errors.
func (d sqliteDialector) Translate(err error) error {
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqliteConstraintUnique, sqliteConstraintPrimaryKey:
			return gorm.ErrDuplicatedKey
		case sqliteConstraintForeignKey:
			return gorm.ErrForeignKeyViolated
		}
	}
	return d.Dialector.Translate(err)
}
