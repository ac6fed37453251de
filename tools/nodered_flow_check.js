// The Watson tutorial through IBM's Node-RED nodes themselves, inside a real Node-RED 4 runtime.
//
// Deploys a flow of node-red-node-watson 0.7.8's `visual-recognition-util-v3` nodes (one per mode: list,
// create, details, update, delete) and a `visual-recognition-v3` classify node, each with the API key as its
// credential and the server as its endpoint, each wired to a function node that hands the result back here.
// Messages go in as a flow's upstream node would send them (msg.payload, msg.params). Prints PASS/FAIL per step.
// Not part of CI (it needs npm); tools/nodered_check.sh runs it after the SDK check (tools/nodered_check.js).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const RED = require('node-red');

const url = process.env.WORKBENCH_URL;
const key = process.env.WORKBENCH_KEY;
const zips = process.env.ZIPS;
const tutorial = process.env.TUTORIAL;
const results = [];
let waiting = null;

const MODES = {
  list: ['visual-recognition-util-v3', 'retrieveClassifiersList'],
  create: ['visual-recognition-util-v3', 'createClassifier'],
  details: ['visual-recognition-util-v3', 'retrieveClassifierDetails'],
  update: ['visual-recognition-util-v3', 'updateClassifier'],
  remove: ['visual-recognition-util-v3', 'deleteClassifier'],
  classify: ['visual-recognition-v3', 'classifyImage'],
  wrongkey: ['visual-recognition-util-v3', 'retrieveClassifiersList'],
};

function flow() {
  const nodes = [{id: 'tab', type: 'tab', label: 'tutorial'}];
  const credentials = {};
  for (const [name, [type, feature]] of Object.entries(MODES)) {
    // ids are not names: Node-RED takes any property equal to a node's id for a reference to that node
    nodes.push({id: name, type, z: 'tab', name: `watson ${name}`, 'image-feature': feature, 'vr-service-endpoint': url,
                lang: '', wires: [[`${name}-out`]]});
    nodes.push({id: `${name}-out`, type: 'function', z: 'tab', func: 'global.get("sink")(msg); return null;',
                outputs: 0, wires: []});
    credentials[name] = {apikey: name === 'wrongkey' ? 'not-the-key' : key};
  }
  return {nodes, credentials};
}

function send(name, msg) {
  return new Promise((resolve) => {
    waiting = resolve;
    RED.nodes.getNode(name).receive(msg);
  });
}

async function step(name, run) {
  try {
    const detail = await run();
    results.push([name, true]);
    console.log(`PASS ${name}${detail ? ': ' + detail : ''}`);
  } catch (err) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${err && (err.message || JSON.stringify(err))}`);
  }
}

function ok(msg) {
  if (msg.result && msg.result.error) {
    const err = msg.result.error;
    throw new Error(`node error ${err.code || ''} ${err.message || JSON.stringify(err)}`);
  }
  return msg.result;
}

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

const zip = (name) => fs.readFileSync(path.join(zips, `${name}.zip`));
const image = (name) => fs.readFileSync(path.join(tutorial, name));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitReady(id) {
  for (let i = 0; i < 600; i += 1) {
    const body = ok(await send('details', {payload: 'go', params: {classifier_id: id}}));
    if (body.status === 'ready' || body.status === 'failed') {
      return body;
    }
    await sleep(2000);
  }
  throw new Error('not ready after 20 minutes');
}

function classesOf(body, id) {
  const result = body.images[0].classifiers.find((c) => c.classifier_id === id);
  check(result, `no ${id} in ${JSON.stringify(body.images[0].classifiers.map((c) => c.classifier_id))}`);
  return result.classes;
}

async function tutorialSteps() {
  let id = null;
  await step('node list (retrieveClassifiersList)', async () => {
    const body = ok(await send('list', {payload: 'go', params: {}}));
    return `${body.classifiers.length} classifiers`;
  });
  await step('node create from zip buffers (createClassifier)', async () => {
    const body = ok(await send('create', {payload: 'go', params: {
      name: 'dogs', beagle_positive_examples: zip('beagle'), goldenretriever_positive_examples: zip('goldenretriever'),
      husky_positive_examples: zip('husky'), negative_examples: zip('cats')}}));
    id = body.classifier_id;
    check(id && body.status === 'training', JSON.stringify(body));
    return `${id} ${body.status}`;
  });
  await step('node details until ready (retrieveClassifierDetails)', async () => {
    const body = await waitReady(id);
    check(body.status === 'ready', JSON.stringify(body));
    return body.classes.map((c) => c.class).sort().join(',');
  });
  await step('node list names it', async () => {
    const body = ok(await send('list', {payload: 'go', params: {}}));
    check(body.classifiers.some((c) => c.classifier_id === id), JSON.stringify(body));
  });
  await step('node classify dogs.jpg buffer, default + custom, threshold 0.6 (classifyImage)', async () => {
    const body = ok(await send('classify', {payload: image('dogs.jpg'),
                                            params: {classifier_ids: `default,${id}`, threshold: 0.6}}));
    check(classesOf(body, 'default').length > 0, 'no default classes');
    return `custom: ${classesOf(body, id).map((c) => `${c.class} ${c.score}`).join(', ')}`;
  });
  await step('node classify, owners me,IBM', async () => {
    const body = ok(await send('classify', {payload: image('dogs.jpg'), params: {owners: 'me,IBM'}}));
    return body.images[0].classifiers.map((c) => c.classifier_id).join(',');
  });
  await step('node classify, msg.params.accept_language ja', async () => {
    const body = ok(await send('classify', {payload: image('dogs.jpg'),
                                            params: {classifier_ids: 'default', accept_language: 'ja'}}));
    const names = classesOf(body, 'default').map((c) => c.class);
    check(names.some((n) => /[\u3040-\u30ff\u4e00-\u9fff]/.test(n)), names.join(','));
    return names.slice(0, 3).join(', ');
  });
  await step('node classify, food', async () => {
    const body = ok(await send('classify', {payload: image('dogs.jpg'), params: {classifier_ids: 'food'}}));
    return classesOf(body, 'food').map((c) => `${c.class} ${c.score}`).join(', ');
  });
  await step('node update: dalmatian + more-cats (updateClassifier)', async () => {
    const body = ok(await send('update', {payload: 'go', params: {
      classifier_id: id, dalmatian_positive_examples: zip('dalmatian'), negative_examples: zip('more-cats')}}));
    check(body.status === 'retraining', JSON.stringify(body));
    return body.status;
  });
  await step('node details until ready after update', async () => {
    const body = await waitReady(id);
    check(body.classes.some((c) => c.class === 'dalmatian'), JSON.stringify(body));
    return body.classes.map((c) => c.class).sort().join(',');
  });
  await step('node classify after update', async () => {
    const body = ok(await send('classify', {payload: image('dogs.jpg'), params: {classifier_ids: id, threshold: 0}}));
    return classesOf(body, id).map((c) => `${c.class} ${c.score}`).join(', ');
  });
  await step('node with a wrong key gets 401', async () => {
    const msg = await send('wrongkey', {payload: 'go', params: {}});
    check(msg.result && msg.result.error && msg.result.error.code === 401, JSON.stringify(msg.result));
    return '401';
  });
  await step('node delete (deleteClassifier)', async () => ok(await send('remove', {payload: 'go',
                                                                                    params: {classifier_id: id}})));
  await step('node details after delete: 404', async () => {
    const msg = await send('details', {payload: 'go', params: {classifier_id: id}});
    check(msg.result && msg.result.error && msg.result.error.code === 404, JSON.stringify(msg.result));
    return '404';
  });
}

async function main() {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodered-'));
  const {nodes, credentials} = flow();
  fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(nodes));
  fs.writeFileSync(path.join(userDir, 'flows_cred.json'), JSON.stringify(credentials));
  const server = http.createServer();
  RED.init(server, {
    userDir, flowFile: 'flows.json', credentialSecret: false, httpAdminRoot: '/red', httpNodeRoot: '/api',
    functionGlobalContext: {sink: (msg) => waiting && waiting(msg)}, logging: {console: {level: 'warn'}},
  });
  const started = new Promise((resolve) => RED.events.once('flows:started', resolve));
  await RED.start();
  await started;
  console.log(`Node-RED ${RED.version()}, node-red-node-watson ${require('node-red-node-watson/package.json').version}`);
  await tutorialSteps();
  const passed = results.filter(([, good]) => good).length;
  console.log(`${passed} passed, ${results.length - passed} failed`);
  await RED.stop();
  fs.rmSync(userDir, {recursive: true, force: true});
  process.exit(passed === results.length ? 0 : 1);
}

main();
