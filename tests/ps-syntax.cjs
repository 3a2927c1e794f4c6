// Parse PowerShell files with tree-sitter-powershell and report syntax
// errors: exit 0 if every file parses, 1 if one does not, 2 if the
// parser is not installed.  An optional check of the script --defer
// writes (tests/unit/test_defer.c runs it when the modules are there);
// pwsh itself is not packaged where this project builds.
//
// Install (npm registry):
//   npm install --prefix build/ps-syntax tree-sitter-powershell@0.26.4 web-tree-sitter@0.27.2
// or point PS_SYNTAX_MODULES at another node_modules directory.
//
// A tree-sitter grammar is not PowerShell's own parser: it catches
// unbalanced quotes, braces and broken statements, not every difference
// between PowerShell versions (test_defer.c's test_template_ps2 looks
// for constructs newer than 2.0), and it does not know that PowerShell
// also ends strings at U+2018..U+201B (the unit tests check that quoting).
'use strict';
// The grammar is 1 MB of WebAssembly: V8's optimising tier takes about
// 30 s of CPU to compile it, the baseline compiler well under a second,
// and a parse runs once.
require('v8').setFlagsFromString('--liftoff-only');
const fs = require('fs');
const path = require('path');

const modules = path.resolve(process.env.PS_SYNTAX_MODULES || 'build/ps-syntax/node_modules');
// Resolved as from a file in that directory, so that the packages'
// "exports" apply.
const from = require('module').createRequire(path.join(modules, 'x.js'));
let Parser, Language;
try {
  ({ Parser, Language } = from('web-tree-sitter'));
} catch (e) {
  console.error(`ps-syntax: web-tree-sitter not found in ${modules}`);
  process.exit(2);
}

(async () => {
  await Parser.init();
  const lang = await Language.load(
    from.resolve('tree-sitter-powershell/tree-sitter-powershell.wasm'));
  const parser = new Parser();
  parser.setLanguage(lang);
  let bad = 0;
  for (const file of process.argv.slice(2)) {
    const src = fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
    const errors = [];
    (function walk (n) {
      if (n.type === 'ERROR' || n.isMissing) errors.push(n);
      for (const c of n.children) walk(c);
    })(parser.parse(src).rootNode);
    for (const e of errors.slice(0, 10)) {
      const what = e.isMissing ? `missing ${e.type}` : 'syntax error';
      const text = src.slice(e.startIndex, Math.min(e.endIndex, e.startIndex + 60));
      console.error(`${file}:${e.startPosition.row + 1}:${e.startPosition.column + 1}: ` +
                    `${what}: ${text.replace(/\r?\n/g, ' ')}`);
    }
    if (errors.length) bad++;
  }
  process.exit(bad ? 1 : 0);
})().catch((e) => { console.error(`ps-syntax: ${e}`); process.exit(2); });
