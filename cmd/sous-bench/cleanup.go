package main

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"gopkg.in/yaml.v3"

	natsbroker "github.com/sous-run/sous/engine/broker/nats"
)

// natsBroker is the NATS URL and stream prefix of a NATS broker in the
// server's extra config lines, or ok false for any other broker.
func natsBroker(config string) (url, prefix string, ok bool) {
	var c struct {
		Broker struct {
			Type   string `yaml:"type"`
			URL    string `yaml:"url"`
			Prefix string `yaml:"prefix"`
		} `yaml:"broker"`
	}
	if yaml.Unmarshal([]byte(config), &c) != nil || c.Broker.Type != "nats" || c.Broker.URL == "" {
		return "", "", false
	}
	return c.Broker.URL, c.Broker.Prefix, true
}

// dropNATSStreams deletes the streams a run on a NATS broker left on the
// server (the broker's stream and its buckets), so that benchmarking does
// not fill a server that tests and other runs share.
func dropNATSStreams(config string) error {
	url, prefix, ok := natsBroker(config)
	if !ok {
		return nil
	}
	nc, err := nats.Connect(url)
	if err != nil {
		return fmt.Errorf("drop the benchmark's streams: %w", err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		return fmt.Errorf("drop the benchmark's streams: %w", err)
	}
	return natsbroker.DropStreams(js, prefix)
}
