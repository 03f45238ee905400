package billing

import "github.com/beaver-gateway/beaver/internal/money"

func formatUSD(m int64) string { return money.Format(m) }
