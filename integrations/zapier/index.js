'use strict';

const authentication = require('./authentication');
const { addApiKey, explainErrors } = require('./lib');
const eventList = require('./triggers/event_list');
const sousEvent = require('./triggers/sous_event');
const actionList = require('./triggers/action_list');
const startRecipe = require('./creates/start_recipe');
const findRun = require('./searches/find_run');

module.exports = {
  version: require('./package.json').version,
  platformVersion: require('zapier-platform-core').version,
  authentication,
  beforeRequest: [addApiKey],
  afterResponse: [explainErrors],
  triggers: {
    [eventList.key]: eventList,
    [sousEvent.key]: sousEvent,
    [actionList.key]: actionList,
  },
  creates: { [startRecipe.key]: startRecipe },
  searches: { [findRun.key]: findRun },
};
