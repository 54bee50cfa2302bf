// Validates Amazon States Language files with amazon-states-language-service (package.json), the language
// service behind the AWS Toolkit's ASL editor in VS Code, and prints its diagnostics as JSON:
// [{"file": ..., "line": 1-based, "message": ..., "severity": 1 error .. 4 hint, "source": ...}].
// tests/test_asl_language_service.py runs it: the editor's own opinion of the definition.
const fs = require("fs");
const { getLanguageService, TextDocument } = require("amazon-states-language-service");

// The service resolves no schemas over the network: its ASL schema is bundled, and the definition has no $schema.
const service = getLanguageService({});

async function diagnose(file) {
  const document = TextDocument.create(`file://${file}`, "json", 1, fs.readFileSync(file, "utf8"));
  const diagnostics = await service.doValidation(document, service.parseJSONDocument(document));
  return diagnostics.map((d) => ({
    file,
    line: d.range.start.line + 1,
    message: d.message,
    severity: d.severity,
    source: d.source ?? null,
  }));
}

Promise.all(process.argv.slice(2).map(diagnose)).then((perFile) => {
  process.stdout.write(JSON.stringify(perFile.flat()));
});
