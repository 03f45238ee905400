package idp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"golang.org/x/oauth2"
)

// githubIdentity reads the GitHub user (its numeric id is the subject) and
// its addresses from /user/emails: the primary address if GitHub verified
// it, else the first verified one, else the primary, unverified.
func (s *Service) githubIdentity(ctx context.Context, p *Provider, tok *oauth2.Token) (*external, error) {
	client := p.conf.Client(ctx, tok)
	var u struct {
		ID    int64  `json:"id"`
		Login string `json:"login"`
		Name  string `json:"name"`
	}
	if err := githubGet(ctx, client, p.apiURL+"/user", &u); err != nil || u.ID == 0 {
		if err == nil {
			err = fmt.Errorf("no user id")
		}
		s.warn(ctx, "GitHub user not read", p.ID, err)
		return nil, errorf(http.StatusBadGateway, "upstream_error", "GitHub did not tell who you are; try again")
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := githubGet(ctx, client, p.apiURL+"/user/emails", &emails); err != nil {
		s.warn(ctx, "GitHub emails not read", p.ID, err)
		return nil, errorf(http.StatusBadGateway, "upstream_error", "GitHub did not share your email addresses; try again")
	}
	ext := &external{Subject: strconv.FormatInt(u.ID, 10), Name: u.Name}
	if ext.Name == "" {
		ext.Name = u.Login
	}
	rank := func(primary, verified bool) int { // 0: not to be used
		switch {
		case primary && verified:
			return 3
		case verified:
			return 2
		case primary:
			return 1
		}
		return 0
	}
	pick := -1
	for i, e := range emails {
		if r := rank(e.Primary, e.Verified); r > 0 && (pick < 0 || r > rank(emails[pick].Primary, emails[pick].Verified)) {
			pick = i
		}
	}
	if pick >= 0 {
		ext.Email, ext.EmailVerified = emails[pick].Email, emails[pick].Verified
	}
	return ext, nil
}

func githubGet(ctx context.Context, client *http.Client, url string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, res.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(into)
}
