package mail

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/beaver-gateway/beaver/internal/config"
)

// New returns the sender BEAVER_MAILER names: "log" (default), "resend" or
// "smtp".
func New(cfg *config.Config, log *slog.Logger) (Sender, error) {
	switch strings.ToLower(strings.TrimSpace(cfg.Mailer)) {
	case "", "log":
		return LogSender{Log: log}, nil
	case "resend":
		return NewResend(cfg.ResendAPIKey, cfg.ResendBase, cfg.MailFrom)
	case "smtp":
		if cfg.SMTPAddr == "" {
			return nil, fmt.Errorf("mail: BEAVER_MAILER=smtp needs BEAVER_SMTP_ADDR (host:port)")
		}
		return NewSMTP(cfg.SMTPAddr, cfg.SMTPUser, cfg.SMTPPassword, cfg.MailFrom)
	}
	return nil, fmt.Errorf("mail: BEAVER_MAILER must be log, resend or smtp, got %q", cfg.Mailer)
}
