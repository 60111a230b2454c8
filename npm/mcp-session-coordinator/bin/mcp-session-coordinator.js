#!/usr/bin/env node
// npm cannot ship one binary for every platform in one package, so each platform's binary is
// an optional dependency that npm installs only where its `os`, `cpu` and `libc` match. This
// launcher finds that package and runs its binary as a child that shares our stdin, stdout
// and stderr: an MCP client then talks to the server directly, with no copying in between.
"use strict";

const { spawn } = require("node:child_process");
const os = require("node:os");
const path = require("node:path");

const platform = `${process.platform}-${process.arch}`;
const packageName = `@mcp-session-coordinator/${platform}`;
const executable =
  process.platform === "win32" ? "mcp-session-coordinator.exe" : "mcp-session-coordinator";

function binaryPath() {
  try {
    return path.join(path.dirname(require.resolve(`${packageName}/package.json`)), "bin", executable);
  } catch {
    return null;
  }
}

const binary = binaryPath();
if (binary === null) {
  console.error(
    `mcp-session-coordinator: no binary for ${platform}: the package ${packageName} is not ` +
      "installed. Binaries are built for linux-x64, linux-arm64 (glibc), darwin-arm64, " +
      "darwin-x64 and win32-x64. If yours is one of them, install again without " +
      "--omit=optional or --no-optional; otherwise `cargo install mcp-session-coordinator` " +
      "builds it from source.",
  );
  process.exit(1);
}

// This launcher runs as `node`, as AI clients do; the binary looks up the AI client it runs
// under (to know its own sessions' locks) and must see through this process, which says so here.
const child = spawn(binary, process.argv.slice(2), {
  stdio: "inherit",
  windowsHide: true,
  env: { ...process.env, MCP_COORDINATOR_LAUNCHER_PID: String(process.pid) },
});

// A client that stops the server signals this launcher, which is the process it started;
// the server must get the same signal to shut down cleanly (end its sessions, release locks).
const forwarded = ["SIGINT", "SIGTERM", "SIGHUP"];
for (const signal of forwarded) {
  process.on(signal, () => child.kill(signal));
}

child.on("error", (error) => {
  console.error(`mcp-session-coordinator: cannot run ${binary}: ${error.message}`);
  process.exit(1);
});

// Ending the way the server ended lets the caller see its exit code, or its signal as a
// shell does (128 + signal number), rather than a launcher's generic status.
child.on("exit", (code, signal) => {
  if (signal !== null) {
    for (const name of forwarded) {
      process.removeAllListeners(name);
    }
    process.kill(process.pid, signal);
    // Only reached for a signal Node does not die of (SIGUSR1 starts its inspector).
    process.exit(128 + (os.constants.signals[signal] ?? 0));
  }
  process.exit(code ?? 1);
});
