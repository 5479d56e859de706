// Every entry point of the installed package loads with require() and with import(), as one copy
// (a second copy would give DI tokens and classes two identities). Run from the CommonJS app.
const entries = {
  'nestjs-workers': 'WorkerModule',
  'nestjs-workers/terminus': 'WorkerHealthModule',
  'nestjs-workers/prometheus': 'WorkerMetricsModule',
  'nestjs-workers/testing': 'drain',
};

(async () => {
  for (const [entry, name] of Object.entries(entries)) {
    const required = require(entry);
    const imported = await import(entry);
    if (typeof required[name] !== 'function')
      throw new Error(`require('${entry}').${name} is ${typeof required[name]}`);
    if (required[name] !== imported[name])
      throw new Error(`${entry}: require() and import() loaded two copies of ${name}`);
    console.log(`${entry}: require() and import() load one copy (${Object.keys(required).length} exports)`);
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
