#!/usr/bin/env node
// Runs an SR Linux event-handler script in real MicroPython (the WebAssembly
// port from npm, loaded with loadMicroPython()) the way the event handler does:
// load the script, call event_handler_main(input), print the string it returns.
//
//   node run.mjs [--mirror DIR]... SCRIPT.py [INPUT.json]   (stdin without INPUT.json)
//     stdout: the returned string and a newline, nothing else
//     stderr: what the script printed, each line prefixed "script: "
//     exit 1 if the script raised or returned something else than a string
//
//   node run.mjs --batch SCRIPT.py < CASES.json
//     CASES.json: [{"input": "...", "mirror": ["DIR", ...]}, ...]
//     stdout: [{"output": "..." or null, "printed": "...", "error": "..." or null}, ...]
//     Each case gets a fresh interpreter (a few ms), so none sees another's state.
//
// MicroPython here sees an in-memory file system, not the host's: --mirror DIR
// (or "mirror" in a case) copies DIR's files into it at the same path, e.g. the
// spool folder holding cfgsnap's pending marker. Setup: npm ci --prefix THIS_DIR.

import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

function usage(msg) {
  process.stderr.write(`run.mjs: ${msg}\nusage: node run.mjs [--mirror DIR]... SCRIPT.py [INPUT.json]\n       node run.mjs --batch SCRIPT.py < CASES.json\n`);
  process.exit(2);
}

// mirror copies the host folder dir (recursively) into MicroPython's file system.
function mirror(mp, dir) {
  mp.FS.mkdirTree(dir);
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    if (st.isDirectory()) mirror(mp, path);
    else if (st.isFile()) mp.FS.writeFile(path, readFileSync(path));
  }
}

// runCase calls event_handler_main(input) in a fresh interpreter.
async function runCase(source, input, mirrors) {
  const printed = [];
  const collect = (bytes) => printed.push(...bytes);
  const mp = await loadMicroPython({ stdout: collect, stderr: collect, linebuffer: false });
  let output = null;
  let error = null;
  try {
    for (const dir of mirrors) mirror(mp, dir);
    mp.runPython(source);
    const main = mp.globals.get("event_handler_main");
    if (typeof main !== "function") throw new Error("the script defines no event_handler_main");
    output = main(input);
    if (typeof output !== "string") {
      error = `event_handler_main returned ${output === null ? "None" : typeof output}, not a string`;
      output = null;
    }
  } catch (e) {
    error = e.name === "PythonError" ? e.message : String(e.stack || e);
  }
  return { output, printed: new TextDecoder().decode(new Uint8Array(printed)), error };
}

const args = process.argv.slice(2);
let batch = false;
const mirrors = [];
const rest = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--batch") batch = true;
  else if (args[i] === "--mirror") {
    if (i + 1 >= args.length) usage("--mirror needs a folder");
    mirrors.push(args[++i]);
  } else if (args[i].startsWith("--")) usage(`unknown flag ${args[i]}`);
  else rest.push(args[i]);
}
if (rest.length < 1 || rest.length > (batch ? 1 : 2)) usage("wrong number of arguments");

const source = readFileSync(rest[0], "utf8");
const stdinOrFile = readFileSync(rest.length === 2 ? rest[1] : 0, "utf8");

if (batch) {
  const results = [];
  for (const c of JSON.parse(stdinOrFile)) {
    results.push(await runCase(source, c.input, [...mirrors, ...(c.mirror || [])]));
  }
  process.stdout.write(JSON.stringify(results) + "\n");
} else {
  const r = await runCase(source, stdinOrFile, mirrors);
  for (const line of r.printed.split("\n")) {
    if (line !== "") process.stderr.write(`script: ${line}\n`);
  }
  if (r.error !== null) {
    process.stderr.write(`run.mjs: ${r.error}\n`);
    process.exit(1);
  }
  process.stdout.write(r.output + "\n");
}
