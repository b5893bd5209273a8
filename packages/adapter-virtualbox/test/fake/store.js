'use strict';
// The fake VirtualBox's state: one JSON file in VBOX_USER_HOME, changed under a lock directory
// so that concurrent VBoxManage processes see each other's changes whole.
const fs = require('fs');
const path = require('path');

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function withState(home, fn) {
  const file = path.join(home, 'fake-virtualbox.json');
  const lock = path.join(home, 'fake-virtualbox.lock');
  const started = Date.now();
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > 10000) fs.rmdirSync(lock);
      } catch {
        // another process removed it
      }
      if (Date.now() - started > 30000) throw new Error('fake VBoxManage: state lock timeout');
      sleep(3);
    }
  }
  try {
    const state = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : { vms: [], media: {} };
    const result = fn(state);
    const tmp = `${file}.${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify(state, null, 1));
    fs.renameSync(tmp, file);
    return result;
  } finally {
    fs.rmdirSync(lock);
  }
}

module.exports = { withState };
