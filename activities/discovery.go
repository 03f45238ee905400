package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/beaver-gateway/beaver/internal/apierr"
	"github.com/beaver-gateway/beaver/internal/mail"
	"github.com/beaver-gateway/beaver/models"
)

// Model discovery: once a day each provider's model list is compared with
// the catalog. It only records and reports; it never prices, activates or
// retires a model.

// ModelLister is what discovery needs of the provider registry
// (*registry.Registry).
type ModelLister interface {
	// Names lists every configured provider, sorted.
	Names() []string
	// ListModels lists the models the provider serves; an unknown provider
	// is apierr 404, any other error a failed listing (never quoting a key).
	ListModels(ctx context.Context, id string) ([]string, error)
}

// Discovery list caps: an aggregator may serve thousands of models, and
// the row and the answers stay bounded.
const (
	MaxNewAtProvider    = 500
	MaxServedByProvider = 5000
)

// ListProvidersInput has no fields yet.
type ListProvidersInput struct{}

// ListProvidersResult is every configured provider, sorted.
type ListProvidersResult struct {
	IDs []string
}

// ListProviders lists the providers discovery visits.
func (a *Activities) ListProviders(ctx context.Context, _ ListProvidersInput) (ListProvidersResult, error) {
	if a.Providers == nil {
		a.log().WarnContext(ctx, "model discovery: this worker has no provider registry")
		return ListProvidersResult{IDs: []string{}}, nil
	}
	return ListProvidersResult{IDs: a.Providers.Names()}, nil
}

// DiscoverModelsInput names the provider and the discovery run.
type DiscoverModelsInput struct {
	ProviderID string
	// Run identifies the discovery run (workflow id and run id): a retry
	// within the same run answers Changed as the first attempt did.
	Run string
}

// DiscoverModelsResult is what the run found; the lists themselves are in
// the model_discovery row (histories stay small).
type DiscoverModelsResult struct {
	Changed bool // what is reported (missing, new, failing) differs from the run before
	Failed  bool // the model list could not be read
	Gone    bool // the provider was removed meanwhile; its row too
	Served  int
	Missing int
	New     int
}

// discoveryState is what a provider's report says; its digest decides
// whether admins hear about it again.
type discoveryState struct {
	Missing []string `json:"missing"`
	New     []string `json:"new"`
	Failing bool     `json:"failing"`
}

func (s discoveryState) digest() string {
	b, _ := json.Marshal(s) // slices of strings and a bool: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// DiscoverModels lists one provider's models, compares them with the
// catalog's active models of that provider (by provider_model), and upserts
// the provider's model_discovery row. A provider whose list cannot be read
// keeps the lists of the run before (nothing is marked missing because of
// an outage) and records the error. Safe to retry: the same list writes the
// same row, and Run makes a retry answer Changed as the first attempt did.
func (a *Activities) DiscoverModels(ctx context.Context, in DiscoverModelsInput) (DiscoverModelsResult, error) {
	if in.ProviderID == "" {
		return DiscoverModelsResult{}, badInput("ProviderID is required")
	}
	if a.Providers == nil {
		return DiscoverModelsResult{}, errors.New("model discovery: this worker has no provider registry")
	}
	prev, err := a.lastDiscovery(ctx, in.ProviderID)
	if err != nil {
		return DiscoverModelsResult{}, err
	}
	served, listErr := a.Providers.ListModels(ctx, in.ProviderID)
	if e, ok := apierr.As(listErr); ok && e.Status == 404 {
		return DiscoverModelsResult{Gone: true}, a.forgetDiscovery(ctx, in.ProviderID)
	}
	row := models.ModelDiscovery{ProviderID: in.ProviderID, CheckedAt: time.Now().UTC()}
	var state discoveryState
	if listErr != nil {
		state, row.ServedByProvider = keptState(prev), keptServed(prev)
		state.Failing = true
		msg := listErr.Error()
		row.Error = &msg
		a.log().WarnContext(ctx, "model discovery: listing failed", "provider", in.ProviderID, "err", listErr)
	} else {
		catalog, err := a.activeCatalog(ctx, in.ProviderID)
		if err != nil {
			return DiscoverModelsResult{}, err
		}
		served = sortedUnique(served)
		state = compareWithCatalog(served, catalog)
		row.ServedByProvider = jsonList(capped(served, MaxServedByProvider))
	}
	row.MissingAtProvider, row.NewAtProvider = jsonList(state.Missing), jsonList(state.New)
	row.Digest = state.digest()
	changed := row.Digest != prevDigest(prev)
	row.ChangedIn = prevChangedIn(prev)
	if changed {
		row.ChangedIn = in.Run
	} else if in.Run != "" && row.ChangedIn == in.Run {
		changed = true // a retry of the attempt that changed it
	}
	if err := a.DB.WithContext(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "provider_id"}},
		UpdateAll: true}).Create(&row).Error; err != nil {
		return DiscoverModelsResult{}, fmt.Errorf("save model discovery of %s: %w", in.ProviderID, err)
	}
	res := DiscoverModelsResult{Changed: changed, Failed: listErr != nil, Served: len(served),
		Missing: len(state.Missing), New: len(state.New)}
	a.log().InfoContext(ctx, "model discovery", "provider", in.ProviderID, "served", res.Served,
		"missing", res.Missing, "new", res.New, "failed", res.Failed, "changed", res.Changed)
	return res, nil
}

// catalogModel is an active catalog model of the provider.
type catalogModel struct {
	ID            string
	ProviderModel string
}

func (a *Activities) activeCatalog(ctx context.Context, provider string) ([]catalogModel, error) {
	var list []catalogModel
	err := a.DB.WithContext(ctx).Model(&models.Model{}).Select("id", "provider_model").
		Where("provider = ? AND active = ?", provider, true).Order("id").Find(&list).Error
	if err != nil {
		return nil, fmt.Errorf("load catalog models of %s: %w", provider, err)
	}
	return list, nil
}

// compareWithCatalog finds the catalog ids whose provider_model is not
// served, and the served ids no catalog model names (sorted, capped).
func compareWithCatalog(served []string, catalog []catalogModel) discoveryState {
	s := discoveryState{Missing: []string{}, New: []string{}}
	known := make(map[string]bool, len(catalog))
	for _, m := range catalog {
		known[m.ProviderModel] = true
		if _, found := slices.BinarySearch(served, m.ProviderModel); !found {
			s.Missing = append(s.Missing, m.ID)
		}
	}
	for _, id := range served {
		if !known[id] {
			s.New = append(s.New, id)
		}
	}
	s.New = capped(s.New, MaxNewAtProvider)
	return s
}

func (a *Activities) lastDiscovery(ctx context.Context, provider string) (*models.ModelDiscovery, error) {
	var row models.ModelDiscovery
	err := a.DB.WithContext(ctx).Where("provider_id = ?", provider).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load model discovery of %s: %w", provider, err)
	}
	return &row, nil
}

func (a *Activities) forgetDiscovery(ctx context.Context, provider string) error {
	if err := a.DB.WithContext(ctx).Where("provider_id = ?", provider).Delete(&models.ModelDiscovery{}).Error; err != nil {
		return fmt.Errorf("forget model discovery of %s: %w", provider, err)
	}
	return nil
}

// prevDigest is the digest of the run before; a provider never checked
// counts as reporting nothing, so a first run with nothing missing or new
// sends no email.
func prevDigest(prev *models.ModelDiscovery) string {
	if prev == nil {
		return discoveryState{Missing: []string{}, New: []string{}}.digest()
	}
	return prev.Digest
}

func prevChangedIn(prev *models.ModelDiscovery) string {
	if prev == nil {
		return ""
	}
	return prev.ChangedIn
}

func keptState(prev *models.ModelDiscovery) discoveryState {
	s := discoveryState{Missing: []string{}, New: []string{}}
	if prev != nil {
		s.Missing, s.New = ParseList(prev.MissingAtProvider), ParseList(prev.NewAtProvider)
	}
	return s
}

func keptServed(prev *models.ModelDiscovery) string {
	if prev == nil {
		return "[]"
	}
	return prev.ServedByProvider
}

// ParseList reads one of model_discovery's JSON lists; never nil.
func ParseList(s string) []string {
	var list []string
	_ = json.Unmarshal([]byte(s), &list) // written by jsonList; "" reads as empty
	if list == nil {
		list = []string{}
	}
	return list
}

func jsonList(list []string) string {
	if list == nil {
		list = []string{}
	}
	b, _ := json.Marshal(list) // strings: cannot fail
	return string(b)
}

func sortedUnique(list []string) []string {
	out := slices.Clone(list)
	slices.Sort(out)
	return slices.Compact(out)
}

func capped(list []string, n int) []string {
	if len(list) > n {
		return list[:n]
	}
	return list
}

// SendDiscoveryReportInput names the providers whose report changed.
type SendDiscoveryReportInput struct {
	ProviderIDs []string
}

// SendDiscoveryReportResult counts the admins emailed.
type SendDiscoveryReportResult struct {
	Sent int
}

// SendDiscoveryReport emails every active admin account one summary of the
// providers' current reports (read from model_discovery). Each email's
// idempotency key is the workflow run's and the admin's, so a retry sends
// nobody a second copy.
func (a *Activities) SendDiscoveryReport(ctx context.Context, in SendDiscoveryReportInput) (SendDiscoveryReportResult, error) {
	report, err := a.discoveryReport(ctx, in.ProviderIDs)
	if err != nil || len(report.Providers) == 0 {
		return SendDiscoveryReportResult{}, err
	}
	var admins []models.Account
	if err := a.DB.WithContext(ctx).Select("id", "email").Where("role = ? AND active = ?", models.RoleAdmin, true).
		Order("id").Find(&admins).Error; err != nil {
		return SendDiscoveryReportResult{}, fmt.Errorf("load admin accounts: %w", err)
	}
	run := activity.GetInfo(ctx).WorkflowExecution
	sent := 0
	for _, admin := range admins {
		m := mail.ModelDiscovery(admin.Email, report)
		m.IdempotencyKey = "model-discovery:" + run.ID + ":" + run.RunID + ":" + admin.ID
		if err := a.send(ctx, m); err != nil {
			return SendDiscoveryReportResult{Sent: sent}, err
		}
		sent++
	}
	a.log().InfoContext(ctx, "model discovery report sent", "providers", len(report.Providers), "admins", sent)
	return SendDiscoveryReportResult{Sent: sent}, nil
}

func (a *Activities) discoveryReport(ctx context.Context, providerIDs []string) (mail.DiscoveryReport, error) {
	r := mail.DiscoveryReport{At: time.Now().UTC(), Link: a.PublicURL + "/manage"}
	if len(providerIDs) == 0 {
		return r, nil
	}
	var rows []models.ModelDiscovery
	if err := a.DB.WithContext(ctx).Where("provider_id IN ?", providerIDs).Order("provider_id").Find(&rows).Error; err != nil {
		return r, fmt.Errorf("load model discovery: %w", err)
	}
	for _, row := range rows {
		p := mail.DiscoveryProvider{ID: row.ProviderID, Missing: ParseList(row.MissingAtProvider),
			New: ParseList(row.NewAtProvider)}
		p.NewTotal = len(p.New)
		if row.Error != nil {
			p.Error = *row.Error
		}
		r.Providers = append(r.Providers, p)
	}
	return r, nil
}
