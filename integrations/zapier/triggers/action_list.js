'use strict';

const { url } = require('../lib');

// A hidden trigger: the actions Sous recipes answer to (zapier.action).
module.exports = {
  key: 'action_list',
  noun: 'Action',
  display: { label: 'List Actions', description: 'The zapier.action names of the recipes.', hidden: true },
  operation: {
    perform: async (z, bundle) => {
      const r = await z.request({ url: url(bundle, '/api/v1/zapier/actions') });
      return r.data.actions.map((a) => ({ id: a.name, name: a.name }));
    },
    sample: { id: 'create-order', name: 'create-order' },
  },
};
