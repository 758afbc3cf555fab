'use strict';

// The app against a real `sous serve` this test starts (offline: Zapier
// is stood in for by createAppTester and a local sink).

const assert = require('assert');
const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');

const zapier = require('zapier-platform-core');
const schema = require('zapier-platform-schema');
const { compileApp, serializeApp } = require('zapier-platform-core/src/tools/schema');

const App = require('../index');

const appTester = zapier.createAppTester(App);
zapier.tools.env.inject();

const API_KEY = 'zapier-app-test-key-0123456789';

const RECIPE = `version: 1
name: new-order
trigger:
  type: zapier.action
  with:
    name: create-order
    inputs:
      - {key: email, type: string, required: true, label: Email}
      - {key: quantity, type: integer, help: How many}
steps:
  - id: notify
    action: zapier.notify
    with:
      event: order_created
      data: {email: "{{ event.input.email }}", quantity: "{{ event.input.quantity }}"}
`;

const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// eventually polls check until it returns true, for up to ms.
const eventually = async (check, ms, what) => {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) {
      return;
    }
    if (Date.now() > until) {
      throw new Error(`not within ${ms} ms: ${what}`);
    }
    await sleep(20);
  }
};

// the sink stands in for Zapier's hook URLs: /live records, /gone answers 410
const sink = { got: [], posts: { '/live': 0, '/gone': 0 } };
const sinkServer = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (c) => (raw += c));
  req.on('end', () => {
    sink.posts[req.url] = (sink.posts[req.url] || 0) + 1;
    if (req.url === '/gone') {
      res.writeHead(410);
      res.end();
      return;
    }
    sink.got.push({ body: JSON.parse(raw), delivery: req.headers['x-sous-delivery'], event: req.headers['x-sous-event'] });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{"status":"success"}');
  });
});

let sous;
let sousLog = '';
let base;
let sinkBase;
let tmp;
let authData;

before(async function () {
  this.timeout(600000);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sous-zapier-'));
  let bin = process.env.SOUS_BIN;
  if (!bin) {
    bin = path.join(tmp, 'sous');
    execFileSync('go', ['build', '-o', bin, './cmd/sous'], { cwd: path.resolve(__dirname, '../../..'), stdio: 'inherit' });
  }
  fs.mkdirSync(path.join(tmp, 'recipes'));
  fs.writeFileSync(path.join(tmp, 'recipes', 'order.yaml'), RECIPE);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  fs.writeFileSync(
    path.join(tmp, 'sous.yaml'),
    `listen: 127.0.0.1:${port}\ndata_dir: ${path.join(tmp, 'data')}\nrecipes: ${path.join(tmp, 'recipes')}\napi_keys: [${API_KEY}]\n`,
  );
  sous = spawn(bin, ['serve', '--config', path.join(tmp, 'sous.yaml')], {
    env: { ...process.env, SOUS_ZAPIER_BACKOFF: '100ms', SOUS_ZAPIER_MAX_BACKOFF: '500ms', SOUS_ZAPIER_POLL: '50ms' },
  });
  sous.stdout.on('data', (d) => (sousLog += d));
  sous.stderr.on('data', (d) => (sousLog += d));
  await new Promise((r) => sinkServer.listen(0, '127.0.0.1', r));
  sinkBase = `http://127.0.0.1:${sinkServer.address().port}`;
  await eventually(
    () =>
      new Promise((resolve) => {
        http
          .get(`${base}/readyz`, (res) => {
            res.resume();
            resolve(res.statusCode === 200);
          })
          .on('error', () => resolve(false));
      }),
    30000,
    'sous serve ready',
  );
  authData = { base_url: base, api_key: API_KEY };
});

after(async function () {
  if (sous) {
    sous.kill('SIGTERM');
  }
  sinkServer.close();
  if (this.currentTest && this.currentTest.state === 'failed') {
    console.log(sousLog);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

afterEach(function () {
  if (this.currentTest.state === 'failed') {
    console.log('sous serve log:\n' + sousLog);
  }
});

// start runs the action through the create and waits for its outputs.
const start = (input) =>
  appTester(App.creates.start_recipe.operation.perform, {
    authData,
    inputData: { action: 'create-order', wait: true, ...input },
  });

describe('the app definition', () => {
  it('passes the platform schema (zapier-platform-schema)', () => {
    const results = schema.validateAppDefinition(serializeApp(compileApp(App)));
    assert.deepStrictEqual(results.errors.map((e) => e.stack), []);
  });
  it('is on zapier-platform-core 19.1.0', () => {
    assert.strictEqual(App.platformVersion, '19.1.0');
  });
});

describe('authentication', () => {
  it('tests the key with /me', async () => {
    const r = await appTester(App.authentication.test, { authData });
    assert.strictEqual(r.ok, true);
  });
  it('refuses a bad key with 401', async () => {
    const res = await fetch(`${base}/api/v1/zapier/me`, { headers: { 'X-API-Key': 'wrong' } });
    assert.strictEqual(res.status, 401);
    await assert.rejects(
      appTester(App.authentication.test, { authData: { base_url: base, api_key: 'wrong' } }),
      (err) => err.name === 'ExpiredAuthError',
    );
    await assert.rejects(
      appTester(App.triggers.event_list.operation.perform, { authData: { base_url: base, api_key: 'wrong' } }),
      (err) => /not valid/.test(err.message) && err.name === 'ExpiredAuthError',
    );
  });
});

describe('the lifecycle of a REST hook', () => {
  let hook;
  let first;
  let gone;

  it('lists the events for the dropdown', async () => {
    const evs = await appTester(App.triggers.event_list.operation.perform, { authData });
    assert.deepStrictEqual(
      evs.map((e) => e.id),
      ['order_created'],
    );
  });

  it('subscribes', async () => {
    hook = await appTester(App.triggers.sous_event.operation.performSubscribe, {
      authData,
      targetUrl: `${sinkBase}/live`,
      inputData: { event: 'order_created' },
    });
    assert.match(hook.id, /^zh_/);
  });

  it('delivers the JSON when a recipe fires', async () => {
    const r = await start({ input__email: 'ada@example.com', input__quantity: '2' });
    assert.strictEqual(r.status, 'succeeded');
    assert.strictEqual(r.outputs.notify.subscribers, 1);
    await eventually(() => sink.got.length === 1, 10000, 'the delivery');
    first = sink.got[0];
    assert.strictEqual(first.body.email, 'ada@example.com');
    assert.strictEqual(first.body.quantity, 2);
    assert.match(first.body.id, /^zi_/);
    assert.match(first.delivery, /^zd_/);
    assert.strictEqual(first.event, 'order_created');
    // the trigger's perform returns the delivery as one item
    const items = await appTester(App.triggers.sous_event.operation.perform, { authData, cleanedRequest: first.body });
    assert.deepStrictEqual(items, [first.body]);
  });

  it('lists samples with ids, newest first, shaped as the live delivery', async () => {
    await start({ input__email: 'grace@example.com', input__quantity: 3 });
    await eventually(() => sink.got.length === 2, 10000, 'the second delivery');
    const items = await appTester(App.triggers.sous_event.operation.performList, {
      authData,
      inputData: { event: 'order_created' },
    });
    assert.strictEqual(items.length, 2);
    assert.deepStrictEqual(items[0], sink.got[1].body, 'newest first, exactly the delivered object');
    assert.deepStrictEqual(items[1], first.body);
    assert.notStrictEqual(items[0].id, items[1].id);
  });

  it('finds the run', async () => {
    const r = await start({ input__email: 'find@example.com' });
    const runs = await appTester(App.searches.find_run.operation.perform, { authData, inputData: { run_id: r.id } });
    assert.strictEqual(runs.length, 1);
    assert.strictEqual(runs[0].id, r.id);
    assert.strictEqual(runs[0].status, 'succeeded');
    const none = await appTester(App.searches.find_run.operation.perform, { authData, inputData: { run_id: 'nope' } });
    assert.deepStrictEqual(none, []);
    await eventually(() => sink.got.length === 3, 10000, 'the third delivery');
  });

  it('unsubscribes, after which nothing more is delivered', async () => {
    await appTester(App.triggers.sous_event.operation.performUnsubscribe, { authData, subscribeData: hook });
    const r = await start({ input__email: 'late@example.com' });
    assert.strictEqual(r.status, 'succeeded');
    assert.strictEqual(r.outputs.notify.subscribers, 0, 'no delivery was queued');
    assert.strictEqual(sink.posts['/live'], 3);
  });

  it('is unsubscribed by a 410 from the subscriber', async () => {
    gone = await appTester(App.triggers.sous_event.operation.performSubscribe, {
      authData,
      targetUrl: `${sinkBase}/gone`,
      inputData: { event: 'order_created' },
    });
    const r = await start({ input__email: 'gone@example.com' });
    assert.strictEqual(r.outputs.notify.subscribers, 1);
    await eventually(
      async () => {
        const res = await fetch(`${base}/api/v1/zapier/hooks/${gone.id}`, { headers: { 'X-API-Key': API_KEY } });
        return res.status === 404;
      },
      10000,
      'the subscription deleted',
    );
    assert.strictEqual(sink.posts['/gone'], 1, 'sent once, not retried');
  });

  it('unsubscribes a Zap whose subscription is already gone (404 is success)', async () => {
    const r = await appTester(App.triggers.sous_event.operation.performUnsubscribe, { authData, subscribeData: gone });
    assert.deepStrictEqual(r, { status: 'deleted', id: gone.id });
    // other errors still throw: a bad key asks the user to reconnect
    await assert.rejects(
      appTester(App.triggers.sous_event.operation.performUnsubscribe, {
        authData: { base_url: base, api_key: 'wrong' },
        subscribeData: gone,
      }),
      (err) => err.name === 'ExpiredAuthError',
    );
  });
});

describe('Start recipe', () => {
  it('has the action input fields', async () => {
    const fields = await appTester(App.creates.start_recipe.operation.inputFields[2], {
      authData,
      inputData: { action: 'create-order' },
    });
    assert.deepStrictEqual(fields, [
      { key: 'input__email', label: 'Email', type: 'string', required: true, helpText: undefined },
      { key: 'input__quantity', label: 'quantity', type: 'integer', required: false, helpText: 'How many' },
    ]);
    const actions = await appTester(App.triggers.action_list.operation.perform, { authData });
    assert.deepStrictEqual(actions, [{ id: 'create-order', name: 'create-order' }]);
  });

  it('answers a bad input with the field', async () => {
    await assert.rejects(start({ input__quantity: 'many', input__email: 'x@example.com' }), /input\.quantity: want an integer/);
    await assert.rejects(start({}), /input\.email: required/);
  });

  it('queues without waiting', async () => {
    const r = await appTester(App.creates.start_recipe.operation.perform, {
      authData,
      inputData: { action: 'create-order', input__email: 'q@example.com' },
    });
    assert.strictEqual(r.status, 'queued');
    assert.strictEqual(r.run_ids.length, 1);
  });
});
