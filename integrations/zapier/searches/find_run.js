'use strict';

const { url } = require('../lib');

// "Find run": one run by id, with its status and record; none when Sous
// has no such run.
module.exports = {
  key: 'find_run',
  noun: 'Run',
  display: { label: 'Find Run', description: 'Finds a Sous run by its id.' },
  operation: {
    inputFields: [{ key: 'run_id', label: 'Run ID', required: true }],
    perform: async (z, bundle) => {
      const r = await z.request({
        url: url(bundle, `/api/v1/runs/${encodeURIComponent(bundle.inputData.run_id)}`),
        skipThrowForStatus: true,
      });
      if (r.status === 404) {
        return [];
      }
      r.throwForStatus();
      return [r.data];
    },
    sample: { id: 'run_0123', recipe: 'new-order', status: 'succeeded' },
  },
};
