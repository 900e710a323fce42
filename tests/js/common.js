'use strict'
// Shared helpers for the kafkajs scenarios driven by tests/test_kafkajs.py.
//
// Every scenario is `node tests/js/<name>.js '<json args>'`; it prints exactly one JSON line on
// stdout (its observations, asserted on by pytest) and exits 0, or prints the error to stderr and
// exits 1.  kafkajs logs go to stderr (level from KAFKAJS_LOG_LEVEL: NOTHING/ERROR/WARN/INFO/DEBUG).
// Every wait is bounded: waitFor() by time and count, and the whole process by a hard deadline.
const { Kafka, logLevel } = require('kafkajs')

function args() {
  return JSON.parse(process.argv[2] || '{}')
}

function stderrLogCreator() {
  return () => ({ namespace, level, label, log }) => {
    const { message, ...extra } = log
    process.stderr.write(
      `${new Date().toISOString()} ${label} [${namespace}] ${message} ${JSON.stringify(extra)}\n`
    )
  }
}

function kafka(a, extra = {}) {
  const level = logLevel[(process.env.KAFKAJS_LOG_LEVEL || 'WARN').toUpperCase()]
  return new Kafka({
    clientId: a.clientId || 'oxka-e2e',
    brokers: [a.bootstrap],
    logLevel: level === undefined ? logLevel.WARN : level,
    logCreator: stderrLogCreator(),
    connectionTimeout: 3000,
    requestTimeout: 15000,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 },
    ...extra,
  })
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// Poll `fn` until it returns a truthy value; bounded by `timeoutMs` and a number of tries.
async function waitFor(fn, what, timeoutMs = 20000, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs
  const maxTries = Math.ceil(timeoutMs / intervalMs) + 2
  let last
  for (let i = 0; i < maxTries; i++) {
    try {
      last = await fn()
      if (last) return last
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline) break
    await sleep(intervalMs)
  }
  throw new Error(`timed out waiting for ${what} (last: ${last && last.stack ? last.stack : JSON.stringify(last)})`)
}

// The error a promise rejects with, as {name, type, code, types}; null if it resolves.  kafkajs
// wraps protocol errors (KafkaJSProtocolError, with the Kafka error `type` and `code`) in retry
// and aggregate errors: `types` lists every Kafka error type found in the chain.
async function errorOf(promise) {
  try {
    await promise
    return null
  } catch (e) {
    const types = []
    let protocol = null
    const walk = (err, depth) => {
      if (!err || depth > 5) return
      if (err.type && !types.includes(err.type)) types.push(err.type)
      if (err.type && protocol === null) protocol = err
      walk(err.cause, depth + 1)
      walk(err.originalError, depth + 1)
      for (const sub of err.errors || []) walk(sub, depth + 1)
      for (const g of err.groups || []) walk(g.error, depth + 1) // KafkaJSDeleteGroupsError
      for (const p of err.partitions || []) walk(p.error, depth + 1) // KafkaJSDeleteTopicRecordsError
    }
    walk(e, 0)
    return {
      name: e.name,
      type: protocol ? protocol.type : null,
      code: protocol && protocol.code !== undefined ? protocol.code : null,
      types,
      message: e.message,
    }
  }
}

function main(fn, hardDeadlineMs = 90000) {
  const timer = setTimeout(() => {
    process.stderr.write(`hard deadline of ${hardDeadlineMs} ms reached\n`)
    process.exit(3)
  }, hardDeadlineMs)
  fn(args())
    .then(result => {
      clearTimeout(timer)
      process.stdout.write(JSON.stringify(result) + '\n')
      process.exit(0)
    })
    .catch(e => {
      clearTimeout(timer)
      process.stderr.write(`FAILED: ${e && e.stack ? e.stack : e}\n`)
      process.exit(1)
    })
}

module.exports = { kafka, sleep, waitFor, errorOf, main, logLevel }
