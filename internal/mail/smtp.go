package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/beaver-gateway/beaver/internal/ids"
)

// SMTP sends through an SMTP server (BEAVER_SMTP_ADDR host:port). It
// upgrades the connection with STARTTLS whenever the server offers it and
// uses implicit TLS on port 465; credentials (BEAVER_SMTP_USER/PASSWORD) are
// only ever sent over TLS (or to localhost).
type SMTP struct {
	Addr     string
	User     string
	Password string
	From     string
	Timeout  time.Duration // per message; default 30s
	// TLSConfig overrides the TLS settings (tests); ServerName defaults to
	// the host of Addr.
	TLSConfig *tls.Config
}

// NewSMTP checks the settings and returns the sender.
func NewSMTP(addr, user, password, from string) (*SMTP, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("mail: BEAVER_SMTP_ADDR must be host:port, got %q", addr)
	}
	if _, err := mail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("mail: BEAVER_MAIL_FROM %q is not an address: %v", from, err)
	}
	return &SMTP{Addr: addr, User: user, Password: password, From: from}, nil
}

// Send delivers m. SMTP 5xx replies are permanent errors; 4xx replies and
// network failures are temporary.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	if err := s.send(ctx, m); err != nil {
		e := &Error{Sender: "smtp", Err: err}
		var te *textproto.Error
		if errors.As(err, &te) {
			e.Status = te.Code
			e.Permanent = te.Code >= 500
		}
		return e
	}
	return nil
}

func (s *SMTP) send(ctx context.Context, m Message) error {
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		return err
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return &textproto.Error{Code: 501, Msg: "bad recipient address " + m.To}
	}
	host, port, _ := net.SplitHostPort(s.Addr)
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tlsCfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if s.TLSConfig != nil {
		tlsCfg = s.TLSConfig.Clone()
		if tlsCfg.ServerName == "" {
			tlsCfg.ServerName = host
		}
	}
	d := &net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return err
	}
	if port == "465" {
		conn = tls.Client(conn, tlsCfg)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok && port != "465" {
		if err := c.StartTLS(tlsCfg); err != nil {
			return err
		}
	}
	if s.User != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return &textproto.Error{Code: 530, Msg: "server offers no AUTH but BEAVER_SMTP_USER is set"}
		}
		if err := c.Auth(smtp.PlainAuth("", s.User, s.Password, host)); err != nil {
			return err
		}
	}
	if err := c.Mail(from.Address); err != nil {
		return err
	}
	if err := c.Rcpt(to.Address); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	body, err := compose(s.From, m, host)
	if err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// compose renders m as a MIME message: multipart/alternative with a
// quoted-printable text part and HTML part, inside multipart/mixed with
// base64 parts when m has attachments. The Message-ID derives from the
// idempotency key, so a retried duplicate is recognizable downstream.
func compose(from string, m Message, host string) ([]byte, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	var mixed *multipart.Writer
	if len(m.Attachments) > 0 {
		mixed = mw
	}
	header := func(k, v string) { fmt.Fprintf(&buf, "%s: %s\r\n", k, v) }
	msgID := ids.New("msg")
	if m.IdempotencyKey != "" {
		msgID = strings.NewReplacer(":", ".", "/", ".", " ", "").Replace(m.IdempotencyKey)
	}
	header("From", from)
	header("To", m.To)
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("Date", time.Now().UTC().Format(time.RFC1123Z))
	header("Message-ID", "<"+msgID+"@"+host+">")
	header("MIME-Version", "1.0")
	if mixed != nil {
		header("Content-Type", "multipart/mixed; boundary="+mixed.Boundary())
		buf.WriteString("\r\n")
		alt := multipart.NewWriter(nil)
		pw, err := mixed.CreatePart(textproto.MIMEHeader{"Content-Type": {"multipart/alternative; boundary=" + alt.Boundary()}})
		if err != nil {
			return nil, err
		}
		mw = multipart.NewWriter(pw)
		if err := mw.SetBoundary(alt.Boundary()); err != nil {
			return nil, err
		}
	} else {
		header("Content-Type", "multipart/alternative; boundary="+mw.Boundary())
		buf.WriteString("\r\n")
	}
	parts := []struct{ typ, body string }{{"text/plain; charset=utf-8", m.Text}, {"text/html; charset=utf-8", m.HTML}}
	for _, p := range parts {
		if p.body == "" {
			continue
		}
		pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {p.typ}, "Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(strings.ReplaceAll(p.body, "\r\n", "\n"))); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	if mixed != nil {
		for _, a := range m.Attachments {
			if err := attach(mixed, a); err != nil {
				return nil, err
			}
		}
		if err := mixed.Close(); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// attach writes a as a base64 part in lines of 76 characters.
func attach(mw *multipart.Writer, a Attachment) error {
	typ := a.ContentType
	if typ == "" {
		typ = "application/octet-stream"
	}
	name := mime.QEncoding.Encode("utf-8", strings.NewReplacer(`"`, "", `\`, "", "\r", "", "\n", "").Replace(a.Filename))
	pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {typ + `; name="` + name + `"`},
		"Content-Transfer-Encoding": {"base64"}, "Content-Disposition": {`attachment; filename="` + name + `"`}})
	if err != nil {
		return err
	}
	enc := base64.StdEncoding.EncodeToString(a.Content)
	for len(enc) > 0 {
		n := min(76, len(enc))
		if _, err := io.WriteString(pw, enc[:n]+"\r\n"); err != nil {
			return err
		}
		enc = enc[n:]
	}
	return nil
}
