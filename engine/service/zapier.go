package service

import (
	"context"
	"fmt"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/zapier"
	"github.com/sous-run/sous/recipes"
)

// openZapier builds the Zapier hub (its settings from SOUS_ZAPIER_*,
// see zapier.SettingsFromEnv) on the service's store and engine.
func (s *Service) openZapier(ctx context.Context) error {
	set, err := zapier.SettingsFromEnv(nil)
	if err != nil {
		return fmt.Errorf("zapier: %w", err)
	}
	s.Zapier, err = zapier.New(ctx, zapier.Config{Store: s.Store, Engine: s.Engine, Logger: s.log.With("component", "zapier"),
		Settings: set, Registerer: s.Metrics.Registry})
	return err
}

// invoke calls a step's action with the Zapier hub as the outbox in its
// context (connector.Outbox), where zapier.notify hands its deliveries.
func (s *Service) invoke(ctx context.Context, step *recipes.Step, req *connector.Request) (map[string]any, error) {
	if s.Zapier != nil {
		ctx = connector.WithOutbox(ctx, s.Zapier)
	}
	return step.Spec.Action.Run(ctx, req)
}
