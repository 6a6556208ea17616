// Copies the pinned front-end libraries (package-lock.json) into the console's package data and
// writes vendor/MANIFEST.json (name, version, sha256 of every file), which tests/console checks.
// Plain copies, no bundler: the console loads these files as ES modules and CSS as they ship.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "sienn_ray", "console", "vendor");

// package -> files to ship (relative to node_modules/<package>), licence included.
const LIBRARIES = {
  uplot: ["dist/uPlot.esm.js", "dist/uPlot.min.css", "LICENSE"],
  "eventsource-parser": [
    "dist/stream.js", "dist/parse.js", "dist/errors.js",
    "dist/stream.js.map", "dist/parse.js.map", "dist/errors.js.map", "LICENSE",
  ],
  // FastAPI's /docs page, served from here instead of a CDN.
  "swagger-ui-dist": ["swagger-ui-bundle.js", "swagger-ui-bundle.js.LICENSE.txt", "swagger-ui.css", "LICENSE", "NOTICE"],
};

const sha256 = (path) => createHash("sha256").update(readFileSync(path)).digest("hex");
const manifest = {};
rmSync(out, { recursive: true, force: true });
for (const [name, files] of Object.entries(LIBRARIES)) {
  const source = join(here, "node_modules", name);
  const { version, license } = JSON.parse(readFileSync(join(source, "package.json"), "utf8"));
  mkdirSync(join(out, name), { recursive: true });
  const shipped = {};
  for (const file of files) {
    const target = join(out, name, file.split("/").pop());
    copyFileSync(join(source, file), target);
    shipped[file.split("/").pop()] = sha256(target);
  }
  manifest[name] = { version, license, files: shipped };
}
writeFileSync(join(out, "MANIFEST.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`vendored ${Object.keys(manifest).join(", ")} into ${out}`);
