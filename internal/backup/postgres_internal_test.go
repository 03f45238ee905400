package backup

import (
	"slices"
	"strings"
	"testing"
)

// The password leaves the URL the client tools see on their command line
// (visible to every user of the machine) and goes to their environment.
func TestPGConnectionKeepsThePasswordOffTheCommandLine(t *testing.T) {
	for _, tc := range []struct{ in, url, password string }{
		{"postgres://beaver:s3cr%40t@db:5432/beaver?sslmode=require", "postgres://beaver@db:5432/beaver?sslmode=require", "s3cr@t"},
		{"postgresql://beaver@db/beaver?password=s3cret&sslmode=disable", "postgresql://beaver@db/beaver?sslmode=disable", "s3cret"},
		{"postgres://beaver@db/beaver", "postgres://beaver@db/beaver", ""},
	} {
		url, env, err := pgConnection(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if url != tc.url || (tc.password != "" && strings.Contains(url, tc.password)) {
			t.Errorf("%s: url %s, want %s", tc.in, url, tc.url)
		}
		has := slices.Contains(env, "PGPASSWORD="+tc.password)
		if (tc.password != "") != has {
			t.Errorf("%s: PGPASSWORD in env %v, want %v", tc.in, has, tc.password != "")
		}
	}
	if _, _, err := pgConnection("mysql://x"); err == nil {
		t.Error("a non-PostgreSQL URL accepted")
	}
}
