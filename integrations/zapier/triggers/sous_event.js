'use strict';

const { url, throwFor } = require('../lib');

// The instant trigger: a REST hook on one Sous event, chosen from a
// dynamic dropdown. Each delivery is one JSON object with a stable id.
module.exports = {
  key: 'sous_event',
  noun: 'Event',
  display: {
    label: 'New Sous Event',
    description: 'Triggers when a Sous recipe publishes an event (a zapier.notify step).',
  },
  operation: {
    type: 'hook',
    inputFields: [
      {
        key: 'event',
        label: 'Event',
        required: true,
        dynamic: 'event_list.id.name',
        helpText: 'The event name of a zapier.notify step in your recipes.',
      },
    ],
    performSubscribe: async (z, bundle) => {
      const r = await z.request({
        url: url(bundle, '/api/v1/zapier/hooks'),
        method: 'POST',
        body: { hookUrl: bundle.targetUrl, event: bundle.inputData.event },
      });
      return r.data; // {id, ...}: subscribeData
    },
    // a subscription already gone (a 410 from Zapier deleted it, or
    // `sous zapier hooks delete`) is unsubscribed: 404 is success
    performUnsubscribe: async (z, bundle) => {
      const id = bundle.subscribeData.id;
      const r = await z.request({
        url: url(bundle, `/api/v1/zapier/hooks/${encodeURIComponent(id)}`),
        method: 'DELETE',
        skipThrowForStatus: true,
      });
      if (r.status === 404) {
        return { status: 'deleted', id };
      }
      return throwFor(r, z).data;
    },
    // one delivery, one Zap run
    perform: (z, bundle) => [bundle.cleanedRequest],
    // recent items, newest first, shaped as the deliveries
    performList: async (z, bundle) => {
      const r = await z.request({
        url: url(bundle, `/api/v1/zapier/events/${encodeURIComponent(bundle.inputData.event)}/samples`),
      });
      return r.data;
    },
    sample: { id: 'zi_0123456789abcdef01234567', email: 'ada@example.com' },
  },
};
