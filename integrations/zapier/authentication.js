'use strict';

// API-key authentication: the Sous server's address and one of its
// api_keys. Zapier tests the connection with GET /api/v1/zapier/me.
module.exports = {
  type: 'custom',
  fields: [
    {
      key: 'base_url',
      label: 'Sous URL',
      required: true,
      type: 'string',
      helpText: 'Where your `sous serve` answers, e.g. `https://sous.example.com`.',
    },
    {
      key: 'api_key',
      label: 'API Key',
      required: true,
      type: 'password',
      helpText: 'One of the `api_keys` of your `sous.yaml`.',
    },
  ],
  test: {
    url: '{{bundle.authData.base_url}}/api/v1/zapier/me',
    method: 'GET',
  },
  connectionLabel: 'Sous ({{bundle.inputData.key}})',
};
