'use strict';

const { url } = require('../lib');

// The input fields of the chosen action, as its recipes declare them.
const actionFields = async (z, bundle) => {
  if (!bundle.inputData.action) {
    return [];
  }
  const r = await z.request({
    url: url(bundle, `/api/v1/zapier/actions/${encodeURIComponent(bundle.inputData.action)}`),
  });
  return r.data.inputs.map((i) => ({
    key: `input__${i.key}`,
    label: i.label || i.key,
    type: i.type,
    required: Boolean(i.required),
    helpText: i.help_text,
  }));
};

// "Start recipe": runs the recipes with a zapier.action trigger of that
// name on the input; with "wait", answers their outputs (up to 25 s).
module.exports = {
  key: 'start_recipe',
  noun: 'Run',
  display: { label: 'Start Recipe', description: 'Starts the Sous recipes of an action with your input.' },
  operation: {
    inputFields: [
      { key: 'action', label: 'Action', required: true, dynamic: 'action_list.id.name', altersDynamicFields: true },
      {
        key: 'wait',
        label: 'Wait for the Outputs',
        type: 'boolean',
        default: 'false',
        helpText: 'Wait (up to 25 seconds) for the runs to finish and return their outputs.',
      },
      actionFields,
    ],
    perform: async (z, bundle) => {
      const input = {};
      for (const [k, v] of Object.entries(bundle.inputData)) {
        if (k.startsWith('input__')) {
          input[k.slice('input__'.length)] = v;
        }
      }
      const wait = bundle.inputData.wait === true || bundle.inputData.wait === 'true';
      const meta = {};
      if (bundle.meta && bundle.meta.zap && bundle.meta.zap.id) {
        meta.zap_id = String(bundle.meta.zap.id);
      }
      const r = await z.request({
        url: url(bundle, `/api/v1/zapier/actions/${encodeURIComponent(bundle.inputData.action)}`),
        method: 'POST',
        body: { input, meta, wait: wait ? 25 : 0 },
      });
      return r.data; // an object: {id, run_ids, status, runs, outputs}
    },
    sample: { id: 'run_0123', run_ids: ['run_0123'], status: 'queued', runs: [] },
  },
};
