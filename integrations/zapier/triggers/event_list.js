'use strict';

const { url } = require('../lib');

// A hidden trigger: the Sous events, for the event dropdown.
module.exports = {
  key: 'event_list',
  noun: 'Event',
  display: { label: 'List Events', description: 'The events Sous recipes publish.', hidden: true },
  operation: {
    perform: async (z, bundle) => {
      const r = await z.request({ url: url(bundle, '/api/v1/zapier/events') });
      return r.data.events.map((e) => ({ id: e.key, name: e.key, sample_fields: e.sample_fields }));
    },
    sample: { id: 'order_created', name: 'order_created' },
  },
};
