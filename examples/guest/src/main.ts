import { runGuestDemo } from './demo.js';

// Without libvirt or the test guest this prints one line saying what is missing and exits 0.
await runGuestDemo({ log: (line) => console.log(line) });
