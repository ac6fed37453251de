// The Watson tutorial through the SDK that IBM's Node-RED nodes use, against a running `workbench serve`.
//
// node-red-node-watson 0.7.8 (the last release with the Visual Recognition v3 nodes) builds its service as
// below: watson-developer-cloud 3.18.x, version_date 2018-03-19, the key as `api_key` (any endpoint but IBM's),
// which that SDK sends as an `api_key` query parameter with no Authorization header. Each step calls the SDK
// method the node's mode calls, with the parameters the node builds from msg.params, and prints PASS/FAIL.
// Not part of CI (it needs npm); run it with tools/nodered_check.sh, which starts the server and installs nothing.
//
//   NODE_PATH=/tmp/nr/node_modules WORKBENCH_URL=http://127.0.0.1:8080 WORKBENCH_KEY=... \
//   ZIPS=/tmp/zips TUTORIAL=data/tutorial node tools/nodered_check.js
'use strict';

const fs = require('fs');
const path = require('path');
const VisualRecognitionV3 = require('watson-developer-cloud/visual-recognition/v3');

const url = process.env.WORKBENCH_URL;
const key = process.env.WORKBENCH_KEY;
const zips = process.env.ZIPS;
const tutorial = process.env.TUTORIAL;
const results = [];

function service(apiKey, language) {
  // as node-red-node-watson's verifyServiceCredentials() does for a non-IBM endpoint
  const settings = {version_date: '2018-03-19', headers: {'User-Agent': 'node-red-node-watson-0.7.8'}, url, api_key: apiKey};
  if (language) {
    settings.headers['Accept-Language'] = language;
  }
  return new VisualRecognitionV3(settings);
}

function call(vr, method, params) {
  return new Promise((resolve, reject) => vr[method](params, (err, body) => (err ? reject(err) : resolve(body))));
}

async function step(name, run) {
  try {
    const detail = await run();
    results.push([name, true]);
    console.log(`PASS ${name}${detail ? ': ' + detail : ''}`);
  } catch (err) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${err && (err.code || '')} ${err && (err.message || err.error || JSON.stringify(err))}`);
  }
}

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

const zip = (name) => fs.createReadStream(path.join(zips, `${name}.zip`));
const image = (name) => fs.createReadStream(path.join(tutorial, name));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitReady(vr, id) {
  for (let i = 0; i < 600; i += 1) {
    const body = await call(vr, 'getClassifier', {classifier_id: id});
    if (body.status === 'ready' || body.status === 'failed') {
      return body;
    }
    await sleep(2000);
  }
  throw new Error('not ready after 20 minutes');
}

function classesOf(body, id) {
  const image0 = body.images[0];
  check(!image0.error, JSON.stringify(image0.error));
  const result = image0.classifiers.find((c) => c.classifier_id === id);
  check(result, `no ${id} in ${JSON.stringify(image0.classifiers.map((c) => c.classifier_id))}`);
  return result.classes;
}

async function main() {
  const vr = service(key);
  let id = null;
  await step('list classifiers (retrieveClassifiersList)', async () => {
    const body = await call(vr, 'listClassifiers', {verbose: true});
    check(Array.isArray(body.classifiers), JSON.stringify(body));
    return `${body.classifiers.length} classifiers`;
  });
  await step('create classifier from zips (createClassifier)', async () => {
    const body = await call(vr, 'createClassifier', {
      name: 'dogs',
      beagle_positive_examples: zip('beagle'),
      goldenretriever_positive_examples: zip('goldenretriever'),
      husky_positive_examples: zip('husky'),
      negative_examples: zip('cats'),
    });
    id = body.classifier_id;
    check(id && body.status === 'training', JSON.stringify(body));
    return `${id} ${body.status}`;
  });
  await step('get classifier until ready (retrieveClassifierDetails)', async () => {
    const body = await waitReady(vr, id);
    check(body.status === 'ready', JSON.stringify(body));
    return body.classes.map((c) => c.class).sort().join(',');
  });
  await step('list classifiers names it', async () => {
    const body = await call(vr, 'listClassifiers', {verbose: true});
    check(body.classifiers.some((c) => c.classifier_id === id), JSON.stringify(body));
  });
  await step('classify dogs.jpg, classifier_ids default + custom, threshold 0.6 (classifyImage)', async () => {
    const body = await call(vr, 'classify', {images_file: image('dogs.jpg'), classifier_ids: `default,${id}`,
                                             threshold: 0.6});
    const custom = classesOf(body, id).map((c) => `${c.class} ${c.score}`);
    check(classesOf(body, 'default').length > 0, 'no default classes');
    return `custom: ${custom.join(', ')}`;
  });
  await step('classify with owners me,IBM', async () => {
    const body = await call(vr, 'classify', {images_file: image('dogs.jpg'), owners: 'me,IBM'});
    const ids = body.images[0].classifiers.map((c) => c.classifier_id);
    check(ids.includes(id) && ids.includes('default'), JSON.stringify(ids));
    return ids.join(',');
  });
  await step('classify in Japanese (Accept-Language header, as the node sets it)', async () => {
    const body = await call(service(key, 'ja'), 'classify', {images_file: image('dogs.jpg'), classifier_ids: 'default'});
    const names = classesOf(body, 'default').map((c) => c.class);
    check(names.some((n) => /[\u3040-\u30ff\u4e00-\u9fff]/.test(n)), names.join(','));
    return names.slice(0, 3).join(', ');
  });
  await step('classify with the food built-in', async () => {
    const body = await call(vr, 'classify', {images_file: image('dogs.jpg'), classifier_ids: 'food'});
    return classesOf(body, 'food').map((c) => `${c.class} ${c.score}`).join(', ');
  });
  await step('update classifier: dalmatian + more negatives (updateClassifier)', async () => {
    const body = await call(vr, 'updateClassifier', {classifier_id: id, dalmatian_positive_examples: zip('dalmatian'),
                                                     negative_examples: zip('more-cats')});
    check(body.status === 'retraining', JSON.stringify(body));
    return body.status;
  });
  await step('get classifier until ready after update', async () => {
    const body = await waitReady(vr, id);
    check(body.status === 'ready' && body.classes.some((c) => c.class === 'dalmatian'), JSON.stringify(body));
    return body.classes.map((c) => c.class).sort().join(',');
  });
  await step('classify a test image after update', async () => {
    const body = await call(vr, 'classify', {images_file: image('dogs.jpg'), classifier_ids: id, threshold: 0});
    return classesOf(body, id).map((c) => `${c.class} ${c.score}`).join(', ');
  });
  await step('a wrong key is a 401', async () => {
    try {
      await call(service('not-the-key'), 'listClassifiers', {});
    } catch (err) {
      check(err.code === 401, `code ${err.code}`);
      return '401';
    }
    throw new Error('a wrong key was accepted');
  });
  await step('delete classifier (deleteClassifier)', async () => {
    await call(vr, 'deleteClassifier', {classifier_id: id});
  });
  await step('get after delete is a 404', async () => {
    try {
      await call(vr, 'getClassifier', {classifier_id: id});
    } catch (err) {
      check(err.code === 404, `code ${err.code}`);
      return '404';
    }
    throw new Error('the deleted classifier is still there');
  });
  const passed = results.filter(([, ok]) => ok).length;
  console.log(`${passed} passed, ${results.length - passed} failed`);
  process.exitCode = passed === results.length ? 0 : 1;
}

main();
