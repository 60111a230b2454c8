// Fills in the npm packages from the templates beside this file, ready for `npm pack` or
// `npm publish`:
//
//   node npm/stage.mjs main VERSION OUT
//       OUT/mcp-session-coordinator: the launcher package, depending on every platform
//       package of platforms.json at exactly VERSION;
//   node npm/stage.mjs platform VERSION OUT PLATFORM BINARY
//       OUT/PLATFORM: the package @mcp-session-coordinator/PLATFORM carrying BINARY.
//
// The versions are filled in here rather than kept in the templates so that Cargo.toml stays
// the one place a release's version is written.
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
const scope = "@mcp-session-coordinator";
const usage =
  "usage: node npm/stage.mjs main VERSION OUT\n" +
  "       node npm/stage.mjs platform VERSION OUT PLATFORM BINARY";

function fail(message) {
  console.error(`stage.mjs: ${message}`);
  process.exit(2);
}

function readJson(path) {
  return JSON.parse(readFileSync(path, "utf8"));
}

function writeJson(path, value) {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** A fresh folder: a staged package must hold exactly what this run put there. */
function freshDir(path) {
  rmSync(path, { recursive: true, force: true });
  mkdirSync(path, { recursive: true });
  return path;
}

const [kind, version, out, ...rest] = process.argv.slice(2);
if (!kind || !version || !out) {
  fail(usage);
}
// npm refuses ranges here and the launcher pins its platform packages to this exact version.
if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.test(version)) {
  fail(`VERSION must be an exact semantic version such as 0.1.0, not ${JSON.stringify(version)}`);
}

const template = readJson(join(here, "mcp-session-coordinator", "package.json"));
const platforms = readJson(join(here, "platforms.json"));

if (kind === "main") {
  if (rest.length !== 0) {
    fail(usage);
  }
  const dir = freshDir(join(out, "mcp-session-coordinator"));
  const manifest = { ...template, version, optionalDependencies: {} };
  for (const platform of Object.keys(platforms)) {
    manifest.optionalDependencies[`${scope}/${platform}`] = version;
  }
  writeJson(join(dir, "package.json"), manifest);
  mkdirSync(join(dir, "bin"));
  const launcher = join(dir, "bin", "mcp-session-coordinator.js");
  copyFileSync(join(here, "mcp-session-coordinator", "bin", "mcp-session-coordinator.js"), launcher);
  chmodSync(launcher, 0o755);
  copyFileSync(join(here, "mcp-session-coordinator", "README.md"), join(dir, "README.md"));
  copyFileSync(join(root, "LICENSE"), join(dir, "LICENSE"));
  console.log(dir);
} else if (kind === "platform") {
  const [platform, binary] = rest;
  if (!platform || !binary || rest.length !== 2) {
    fail(usage);
  }
  const target = platforms[platform];
  if (!target) {
    fail(`unknown platform ${platform}; platforms.json has ${Object.keys(platforms).join(", ")}`);
  }
  const executable =
    target.os === "win32" ? "mcp-session-coordinator.exe" : "mcp-session-coordinator";
  const dir = freshDir(join(out, platform));
  const manifest = {
    name: `${scope}/${platform}`,
    version,
    description: `The mcp-session-coordinator binary for ${platform} (${target.rust}), run by the mcp-session-coordinator package.`,
    license: template.license,
    homepage: template.homepage,
    repository: template.repository,
    os: [target.os],
    cpu: [target.cpu],
    ...(target.libc ? { libc: [target.libc] } : {}),
    files: ["bin/"],
    preferUnplugged: true,
  };
  writeJson(join(dir, "package.json"), manifest);
  mkdirSync(join(dir, "bin"));
  const installed = join(dir, "bin", executable);
  copyFileSync(binary, installed);
  chmodSync(installed, 0o755);
  writeFileSync(
    join(dir, "README.md"),
    `# ${scope}/${platform}\n\nThe \`mcp-session-coordinator\` binary for ${platform}. ` +
      "Install the `mcp-session-coordinator` package instead: it picks this one on this " +
      `platform.\n\n${template.homepage}\n`,
  );
  copyFileSync(join(root, "LICENSE"), join(dir, "LICENSE"));
  console.log(dir);
} else {
  fail(usage);
}
